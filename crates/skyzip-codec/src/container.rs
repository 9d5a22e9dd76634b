//! The container: how an image HDU's header travels in the BINTABLE that holds its tiles, and
//! comes back, following the tiled-image convention as fpack does.
//!
//! The image's cards go into the table's header in order. Those a BINTABLE may not carry are
//! renamed as fpack renames them (BSCALE → ZSCALE, SIMPLE → ZSIMPLE, CHECKSUM → ZHECKSUM …);
//! BITPIX and NAXISn become ZBITPIX and ZNAXISn with their original comments. A primary image
//! leaves a minimal primary behind (SIMPLE, BITPIX = 8, NAXIS = 0, EXTEND), so that fitsverify
//! finds no WCS keyword in an HDU without axes; its ZSIMPLE card says where it goes back to.

use skyzip_fits::{Card, Header};

/// ZCMPTYPE of skyzip's tables.
pub const CMPTYPE: &str = "SKYZIP_1";

/// Image keywords a BINTABLE may not carry, and their names in the table.
const RENAMED: [(&str, &str); 13] = [
    ("SIMPLE", "ZSIMPLE"),
    ("XTENSION", "ZTENSION"),
    ("EXTEND", "ZEXTEND"),
    ("PCOUNT", "ZPCOUNT"),
    ("GCOUNT", "ZGCOUNT"),
    ("BSCALE", "ZSCALE"),
    ("BZERO", "ZZERO"),
    ("BLANK", "ZBLANK"),
    ("BUNIT", "ZBUNIT"),
    ("DATAMAX", "ZDATAMAX"),
    ("DATAMIN", "ZDATAMIN"),
    ("CHECKSUM", "ZHECKSUM"),
    ("DATASUM", "ZDATASUM"),
];

/// Keywords of the table itself and of the codec: never part of the image's header.
pub fn is_container_key(k: &str) -> bool {
    let numbered = |p: &str| k.starts_with(p) && k[p.len()..].chars().all(|c| c.is_ascii_digit());
    matches!(
        k,
        "ZIMAGE"
            | "ZCMPTYPE"
            | "ZBITPIX"
            | "TFIELDS"
            | "CHECKSUM"
            | "DATASUM"
            | "EXTNAME"
            | "THEAP"
    ) || k.starts_with("SZ")
        || [
            "ZNAXIS", "ZTILE", "ZNAME", "ZVAL", "TTYPE", "TFORM", "TUNIT", "TDIM",
        ]
        .iter()
        .any(|p| numbered(p))
}

fn renamed(card: &Card, to: &str) -> Card {
    Card::new(&format!("{to:<8}{}", &card.text()[8..]))
}

/// The cards that describe the image's array in the table: ZBITPIX, ZNAXIS, ZNAXISn, each the
/// image's own card renamed where it has one (so its comment and layout come back), else new.
pub fn array_cards(image: &Header, bitpix: i32, axes: &[usize]) -> Vec<Card> {
    let with = |key: &str, value: String, fallback: &str| match image.get(key) {
        Some(c) if c.raw_value() == Some(value.as_str()) => renamed(c, &format!("Z{key}")),
        _ => Card::value(&format!("Z{key}"), &value, fallback),
    };
    let mut out = vec![
        with("BITPIX", bitpix.to_string(), "BITPIX of the image"),
        with("NAXIS", axes.len().to_string(), "axes of the image"),
    ];
    for (k, a) in axes.iter().enumerate() {
        out.push(with(&format!("NAXIS{}", k + 1), a.to_string(), ""));
    }
    out
}

/// The image's other cards as the table carries them, in order.
pub fn image_to_table(image: &Header) -> Vec<Card> {
    let mut out = Vec::new();
    for c in &image.cards {
        let k = c.keyword();
        if let Some((_, z)) = RENAMED.iter().find(|(b, _)| *b == k) {
            out.push(renamed(c, z));
        } else if c.is_structural() || is_container_key(k) {
            // BITPIX, NAXISn: in array_cards; the rest is the table's own.
            continue;
        } else {
            out.push(c.clone());
        }
    }
    out
}

/// The image's header back from a table's: renamed keys restored, ZBITPIX/ZNAXISn as BITPIX and
/// NAXISn (so their comments come back), the table's own keywords dropped. EXTNAME is left to
/// the caller.
pub fn table_to_image(table: &Header) -> Header {
    let mut h = Header::default();
    for c in &table.cards {
        let k = c.keyword();
        if let Some((b, _)) = RENAMED.iter().find(|(_, z)| *z == k) {
            h.cards.push(renamed(c, b));
        } else if k == "ZBITPIX"
            || (k.starts_with("ZNAXIS") && k[6..].chars().all(|d| d.is_ascii_digit()))
        {
            h.cards.push(renamed(c, &k[1..]));
        } else if c.is_structural() || is_container_key(k) {
            continue;
        } else {
            h.cards.push(c.clone());
        }
    }
    h
}

/// True when the table holds an image that was a file's primary HDU.
pub fn was_primary(table: &Header) -> bool {
    table.get("ZSIMPLE").is_some()
}

/// The header of the minimal primary HDU that stands before a primary image's table.
pub fn minimal_primary() -> Header {
    Header {
        cards: vec![
            Card::value("EXTEND", "T", "FITS dataset may contain extensions"),
            Card::new(&format!(
                "COMMENT   The image is tile-compressed by skyzip (ZCMPTYPE = '{CMPTYPE}') in the"
            )),
            Card::new("COMMENT   next HDU; `skyzip decompress` restores the original file."),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_round_trip_through_the_table() {
        let image = Header {
            cards: [
                "SIMPLE  =                    T / file does conform to FITS standard",
                "BITPIX  =                   16 / number of bits per data pixel",
                "NAXIS   =                    2 / number of data axes",
                "NAXIS1  =                  536 / length of data axis 1",
                "NAXIS2  =                  520",
                "EXTEND  =                    T",
                "BZERO   =                32768",
                "BUNIT   = 'ADU     '",
                "CRPIX1  =                 10.5",
                "OBJECT  = 'rf0420  '           / target",
                "CHECKSUM= 'abc     '",
            ]
            .iter()
            .map(|t| Card::new(t))
            .collect(),
        };
        let mut table = Header {
            cards: array_cards(&image, 16, &[536, 520]),
        };
        assert_eq!(
            table.cards[0].text().trim_end(),
            "ZBITPIX =                   16 / number of bits per data pixel"
        );
        assert_eq!(
            table.cards[3].text().trim_end(),
            "ZNAXIS2 =                  520"
        );
        table.cards.extend(image_to_table(&image));
        let keys: Vec<&str> = table.cards.iter().map(Card::keyword).collect();
        for k in [
            "ZSIMPLE", "ZEXTEND", "ZZERO", "ZBUNIT", "CRPIX1", "ZHECKSUM",
        ] {
            assert!(keys.contains(&k), "{k} in {keys:?}");
        }
        for k in ["SIMPLE", "BZERO", "BUNIT", "CHECKSUM", "BITPIX"] {
            assert!(!keys.contains(&k), "{k} must not be in a table: {keys:?}");
        }
        assert!(was_primary(&table));
        let back = table_to_image(&table);
        let mut want = image.cards.clone();
        want.sort_by(|a, b| a.text().cmp(b.text()));
        let mut got = back.cards.clone();
        got.sort_by(|a, b| a.text().cmp(b.text()));
        assert_eq!(
            got.iter().map(|c| c.text().trim_end()).collect::<Vec<_>>(),
            want.iter().map(|c| c.text().trim_end()).collect::<Vec<_>>()
        );
    }
}
