//! store-fastmmap (work in progress).
