//! Market-data decode (simd-json) and L2 books with change-id continuity.
