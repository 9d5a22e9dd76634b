//! `decompress` on an arbitrary file (its checksum cards blanked so mutations reach the parser).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    skyzip_codec::fuzzing::file_case(data);
});
