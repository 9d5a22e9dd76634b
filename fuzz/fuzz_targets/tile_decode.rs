//! The tile decoder on arbitrary bytes (4 header bytes choose the tile size and settings).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    skyzip_codec::fuzzing::tile_case(data);
});
