//! Fuzz target: HTTP parser: the input is cut into a request stream and a response stream, each after a header start that reaches chunked, gzip and multipart code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    capture_fuzz::drive_app(
        data,
        b"POST /u HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n",
        b"HTTP/1.1 200 OK\r\n",
    );
});
