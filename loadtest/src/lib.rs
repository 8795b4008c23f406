//! Load drivers and benchmarks for Dialcast.
