//! Everything that talks to the operating system: opening the file safely, OFD byte-range
//! locks, the shared mapping, fork detection, the CPU's CRC instruction. The only modules besides `format` with
//! `unsafe` code.

pub(crate) mod clock;
pub(crate) mod crc32c;
pub(crate) mod file;
pub(crate) mod fork;
pub(crate) mod lock;
pub(crate) mod mmap;
pub(crate) mod robust;
pub(crate) mod store_file;
