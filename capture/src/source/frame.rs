//! The frame every packet source hands over.

/// A captured frame as a source hands it over.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Capture time, µs since the Unix epoch.
    pub ts: i64,
    /// Link type (`LINKTYPE_*`) of the frame.
    pub link: i32,
    /// Captured bytes (up to the snap length).
    pub data: &'a [u8],
}
