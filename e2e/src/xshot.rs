//! Screenshots from the X server: one thread owns GDK (it may be used from one thread
//! only) and reads rectangles of the root window.

use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use gdk::prelude::*;

type Reply = Sender<Result<Vec<u8>, String>>;
/// A rectangle of the root window (x, y, width, height) and where to answer.
type Request = ([i32; 4], Reply);

static WORKER: OnceLock<Sender<Request>> = OnceLock::new();

pub fn capture(rect: [i32; 4]) -> Result<Vec<u8>> {
    let worker = WORKER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::spawn(move || {
            let ready = init();
            for (rect, reply) in rx {
                let _ = reply.send(match &ready {
                    Ok(()) => grab(rect),
                    Err(e) => Err(e.clone()),
                });
            }
        });
        tx
    });
    let (reply, answer) = channel();
    worker
        .send((rect, reply))
        .context("the screenshot thread is gone")?;
    answer
        .recv_timeout(Duration::from_secs(15))
        .context("no screenshot within 15 s")?
        .map_err(|e| anyhow!(e))
}

/// `gdk::init` would end the process without a display: check instead.
fn init() -> Result<(), String> {
    // SAFETY: called once, on the thread that uses GDK from then on; null argv is
    // allowed.
    let ok = unsafe { gdk::ffi::gdk_init_check(std::ptr::null_mut(), std::ptr::null_mut()) };
    if ok == 0 {
        return Err("no X display for screenshots (is DISPLAY set?)".into());
    }
    // SAFETY: GDK was initialised on this thread just above.
    unsafe { gdk::set_initialized() };
    Ok(())
}

fn grab([x, y, w, h]: [i32; 4]) -> Result<Vec<u8>, String> {
    let root = gdk::Window::default_root_window();
    let pixbuf = root
        .pixbuf(x, y, w, h)
        .ok_or_else(|| format!("could not read {w}x{h}+{x}+{y} from the X server"))?;
    pixbuf
        .save_to_bufferv("png", &[])
        .map_err(|e| format!("encoding the screenshot: {e}"))
}
