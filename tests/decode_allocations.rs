//! Decoding a GetUser request performs zero heap allocations: the framing hands out a slice of
//! the received chunk, and the generated message borrows its strings from it. Counted exactly
//! with a counting global allocator (this test binary only).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use rawgrpc::codec;
use rawgrpc::proto::user::{User, UserRequest};
use rawgrpc::wire::frame::MessageDecoder;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decoding_a_get_user_request_does_not_allocate() {
    // A GetUser request as a client sends it: one DATA frame holding one framed message.
    let request = UserRequest {
        user: Some(User {
            id: "bench".into(),
            ..User::default()
        }),
    };
    let frame = codec::encode(&request, usize::MAX).expect("encode");
    let chunk = Bytes::copy_from_slice(&frame);
    let mut decoder = MessageDecoder::new(4 << 20);

    let before = ALLOCATIONS.load(Ordering::SeqCst);
    decoder.push(chunk);
    let message = decoder.next_message().expect("valid").expect("complete");
    let decoded: UserRequest<'_> = codec::decode(&message.payload).expect("decodes");
    let id_is_borrowed = matches!(
        decoded.user.as_ref().map(|u| &u.id),
        Some(std::borrow::Cow::Borrowed("bench"))
    );
    let after = ALLOCATIONS.load(Ordering::SeqCst);

    assert!(id_is_borrowed, "the id borrows from the received bytes");
    assert_eq!(
        after - before,
        0,
        "allocations while decoding a GetUser request"
    );
}
