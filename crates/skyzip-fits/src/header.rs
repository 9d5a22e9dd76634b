//! FITS headers as the ordered list of their 80-character cards, comments and WCS included.

use crate::error::{ErrorKind, FitsError, Result};
use crate::ffi::{status_message, Handle};
use fitsio::sys;
use std::ffi::CStr;
use std::os::raw::c_char;

/// One 80-character header card, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card(String);

/// Keywords that describe the HDU's structure: cfitsio writes them itself.
const STRUCTURAL: &[&str] = &[
    "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "END",
];

impl Card {
    /// Builds a card from text, padded or cut to 80 characters.
    pub fn new(text: &str) -> Self {
        let mut s: String = text.chars().take(80).collect();
        while s.len() < 80 {
            s.push(' ');
        }
        Card(s)
    }

    /// A `KEY = value / comment` card with a numeric or logical value written as given.
    pub fn value(key: &str, value: &str, comment: &str) -> Self {
        let mut s = format!("{key:<8}= {value:>20}");
        if !comment.is_empty() {
            s.push_str(" / ");
            s.push_str(comment);
        }
        Card::new(&s)
    }

    /// A `KEY = 'text' / comment` card.
    pub fn string(key: &str, value: &str, comment: &str) -> Self {
        let quoted = format!("'{:<8}'", value.replace('\'', "''"));
        let mut s = format!("{key:<8}= {quoted:<20}");
        if !comment.is_empty() {
            s.push_str(" / ");
            s.push_str(comment);
        }
        Card::new(&s)
    }

    pub fn text(&self) -> &str {
        &self.0
    }

    /// The keyword (columns 1–8, trimmed).
    pub fn keyword(&self) -> &str {
        self.0.get(..8).unwrap_or(&self.0).trim_end()
    }

    /// True for SIMPLE, BITPIX, NAXISn and the other keywords cfitsio writes itself.
    pub fn is_structural(&self) -> bool {
        let k = self.keyword();
        STRUCTURAL.contains(&k)
            || (k.starts_with("NAXIS") && k[5..].chars().all(|c| c.is_ascii_digit()))
    }

    /// The raw value field (after `= `, before an unquoted `/`), trimmed; None for commentary cards.
    pub fn raw_value(&self) -> Option<&str> {
        if self.0.get(8..10) != Some("= ") {
            return None;
        }
        let v = &self.0[10..];
        let mut in_quote = false;
        for (i, ch) in v.char_indices() {
            match ch {
                '\'' => in_quote = !in_quote,
                '/' if !in_quote => return Some(v[..i].trim()),
                _ => {}
            }
        }
        Some(v.trim())
    }

    /// The value as a number (FITS allows `D` exponents).
    pub fn f64_value(&self) -> Option<f64> {
        self.raw_value()?.replace(['D', 'd'], "E").parse().ok()
    }

    /// The value as a string with quotes removed.
    pub fn str_value(&self) -> Option<String> {
        let v = self.raw_value()?;
        let inner = v.strip_prefix('\'')?.strip_suffix('\'')?;
        Some(inner.replace("''", "'").trim_end().to_string())
    }
}

/// A header: every card in order (without END).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub cards: Vec<Card>,
}

impl Header {
    /// The first card with this keyword.
    pub fn get(&self, key: &str) -> Option<&Card> {
        self.cards.iter().find(|c| c.keyword() == key)
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Card::f64_value)
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Card::str_value)
    }

    /// Replaces the first card with this keyword, or appends it.
    pub fn set(&mut self, card: Card) {
        let key = card.keyword().to_string();
        match self.cards.iter_mut().find(|c| c.keyword() == key) {
            Some(c) => *c = card,
            None => self.cards.push(card),
        }
    }

    /// Reads the current HDU's header; a tile-compressed HDU is shown as the image it holds.
    pub(crate) fn read(h: &Handle) -> Result<Header> {
        let mut ptr: *mut c_char = std::ptr::null_mut();
        let mut nkeys = 0;
        let mut status = 0;
        unsafe {
            sys::ffcnvthdr2str(
                h.ptr,
                0,
                std::ptr::null_mut(),
                0,
                &mut ptr,
                &mut nkeys,
                &mut status,
            )
        };
        if status != 0 {
            return Err(h.check(status).unwrap_err());
        }
        if ptr.is_null() {
            return Err(FitsError::new(
                &h.path,
                ErrorKind::BadHeader("cfitsio returned no header".into()),
            ));
        }
        let text = unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned();
        let mut s2 = 0;
        unsafe { sys::fffree(ptr as *mut _, &mut s2) };
        if s2 != 0 {
            status_message(s2);
        }
        let bytes = text.as_bytes();
        let mut cards = Vec::with_capacity(bytes.len() / 80);
        for chunk in bytes.chunks(80) {
            let card = Card::new(&String::from_utf8_lossy(chunk));
            if card.keyword() == "END" && card.text()[3..].trim().is_empty() {
                break;
            }
            cards.push(card);
        }
        Ok(Header { cards })
    }
}

/// The header of HDU `index` (0-based) of a file, whatever the HDU holds.
pub fn read_header(path: &std::path::Path, index: usize) -> Result<Header> {
    let h = Handle::open(path)?;
    h.goto(index)?;
    Header::read(&h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_comments() {
        let c = Card::new("BZERO   =              32768.0 / offset for unsigned");
        assert_eq!(c.keyword(), "BZERO");
        assert_eq!(c.f64_value(), Some(32768.0));
        let s = Card::new("OBJECT  = 'M13 / core''s'        / the target");
        assert_eq!(s.str_value().as_deref(), Some("M13 / core's"));
        let d = Card::new("CDELT1  =        -1.0000000D-02");
        assert_eq!(d.f64_value(), Some(-0.01));
        assert!(Card::new("NAXIS2  =                  100").is_structural());
        assert!(!Card::new("NAXISX  = 1").is_structural());
        assert!(Card::new("HISTORY made by hand").raw_value().is_none());
    }

    #[test]
    fn builds_cards() {
        let c = Card::value("ZQUANTIZ", "4.0", "level");
        assert_eq!(c.text().len(), 80);
        assert_eq!(c.f64_value(), Some(4.0));
        let s = Card::string("EXTNAME", "SCI", "");
        assert_eq!(s.str_value().as_deref(), Some("SCI"));
    }
}
