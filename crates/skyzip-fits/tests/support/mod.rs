use skyzip_fits::{read_image, FitsWriter, HduSelector, ImageHdu, TileCompression};
use std::path::Path;

/// Writes `img` alone to a new file at `path` (tile-compressed with `codec` if given) and reads
/// its image back.
pub fn write_then_read(img: &ImageHdu, codec: Option<&TileCompression>, path: &Path) -> ImageHdu {
    let _ = std::fs::remove_file(path);
    let mut w = FitsWriter::create(path, false).unwrap();
    w.write_image(img, codec).unwrap();
    w.finish().unwrap();
    read_image(path, &HduSelector::FirstImage).unwrap()
}
