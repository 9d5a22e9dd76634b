//! Binary tables (BINTABLE): numeric columns for labels and catalogues, and variable-length
//! byte columns (`1PB`) for compressed tiles.

use crate::error::{ErrorKind, FitsError, Result};
use crate::ffi::Handle;
use crate::header::Header;
use crate::writer::FitsWriter;
use fitsio::sys;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_long};
use std::path::Path;

/// One column's values, one per row.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// 64-bit floats (TFORM `1D`).
    F64(Vec<f64>),
    /// 64-bit integers (TFORM `1K`).
    I64(Vec<i64>),
    /// A byte string of any length per row (TFORM `1PB`, data in the heap).
    Bytes(Vec<Vec<u8>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Bytes(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Values as f64 (integers converted); None for byte columns.
    pub fn as_f64(&self) -> Option<Vec<f64>> {
        match self {
            Column::F64(v) => Some(v.clone()),
            Column::I64(v) => Some(v.iter().map(|&x| x as f64).collect()),
            Column::Bytes(_) => None,
        }
    }
}

/// A binary table: named columns of equal length and the extension's other header cards.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<(String, Column)>,
    pub header: Header,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.1.len())
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| c)
    }
}

impl FitsWriter {
    /// Appends a BINTABLE named `extname` (an empty primary is written first if needed).
    pub fn write_table(&mut self, extname: &str, table: &Table) -> Result<()> {
        if self.hdu_count() == 0 {
            self.write_empty_primary(&Header::default())?;
        }
        let r = write_table_hdu(self.handle(), extname, table);
        self.count_hdu();
        r.map_err(|e| FitsError::new(self.dest(), e.kind))
    }
}

fn write_table_hdu(h: &Handle, extname: &str, t: &Table) -> Result<()> {
    let rows = t.rows();
    if let Some((n, c)) = t.columns.iter().find(|(_, c)| c.len() != rows) {
        return Err(h.err(ErrorKind::BadOption(format!(
            "table column {n} has {} rows, not {rows}",
            c.len()
        ))));
    }
    let cstr =
        |s: &str| CString::new(s).map_err(|_| h.err(ErrorKind::BadOption(format!("name {s:?}"))));
    let names: Vec<CString> = t
        .columns
        .iter()
        .map(|(n, _)| cstr(n))
        .collect::<Result<_>>()?;
    let forms: Vec<CString> = t
        .columns
        .iter()
        .map(|(_, c)| match c {
            Column::F64(_) => cstr("1D"),
            Column::I64(_) => cstr("1K"),
            Column::Bytes(v) => cstr(&format!(
                "1PB({})",
                v.iter().map(Vec::len).max().unwrap_or(0)
            )),
        })
        .collect::<Result<_>>()?;
    let mut name_ptrs: Vec<*mut c_char> = names.iter().map(|c| c.as_ptr() as *mut c_char).collect();
    let mut form_ptrs: Vec<*mut c_char> = forms.iter().map(|c| c.as_ptr() as *mut c_char).collect();
    let ext = cstr(extname)?;
    let mut status = 0;
    unsafe {
        sys::ffcrtb(
            h.ptr,
            sys::BINARY_TBL as c_int,
            rows as i64,
            t.columns.len() as c_int,
            name_ptrs.as_mut_ptr(),
            form_ptrs.as_mut_ptr(),
            std::ptr::null_mut(),
            ext.as_ptr(),
            &mut status,
        )
    };
    h.check(status)?;
    for (k, (_, col)) in t.columns.iter().enumerate() {
        let colnum = k as c_int + 1;
        match col {
            Column::F64(v) if !v.is_empty() => {
                let mut v = v.clone();
                unsafe {
                    sys::ffpcld(
                        h.ptr,
                        colnum,
                        1,
                        1,
                        v.len() as i64,
                        v.as_mut_ptr(),
                        &mut status,
                    )
                };
            }
            Column::I64(v) if !v.is_empty() => {
                let mut v = v.clone();
                unsafe {
                    sys::ffpcljj(
                        h.ptr,
                        colnum,
                        1,
                        1,
                        v.len() as i64,
                        v.as_mut_ptr(),
                        &mut status,
                    )
                };
            }
            Column::Bytes(v) => {
                for (row, bytes) in v.iter().enumerate() {
                    let mut b = bytes.clone();
                    unsafe {
                        sys::ffpclb(
                            h.ptr,
                            colnum,
                            row as i64 + 1,
                            1,
                            b.len() as i64,
                            b.as_mut_ptr(),
                            &mut status,
                        )
                    };
                    if status != 0 {
                        break;
                    }
                }
            }
            _ => {}
        }
        h.check(status)?;
    }
    for card in &t.header.cards {
        if card.is_structural() || matches!(card.keyword(), "EXTNAME" | "CHECKSUM" | "DATASUM") {
            continue;
        }
        let text = CString::new(card.text().trim_end()).unwrap_or_default();
        unsafe { sys::ffprec(h.ptr, text.as_ptr(), &mut status) };
        h.check(status)?;
    }
    Ok(())
}

/// Reads the BINTABLE named `extname`: numeric columns as F64/I64, variable-length bytes as Bytes.
pub fn read_table(path: &Path, extname: &str) -> Result<Table> {
    let h = Handle::open(path)?;
    let n = h.num_hdus()?;
    for i in 0..n {
        let t = h.goto(i)?;
        if t == sys::BINARY_TBL as c_int
            && h.key_string("EXTNAME")
                .is_some_and(|e| e.eq_ignore_ascii_case(extname))
        {
            return read_table_here(&h);
        }
    }
    Err(FitsError::new(
        path,
        ErrorKind::NoSuchHdu(format!("binary table {extname}")),
    ))
}

/// Reads the BINTABLE at HDU `index` (0-based).
pub fn read_table_at(path: &Path, index: usize) -> Result<Table> {
    let h = Handle::open(path)?;
    let t = h.goto(index)?;
    if t != sys::BINARY_TBL as c_int {
        return Err(FitsError::new(
            path,
            ErrorKind::NoSuchHdu(format!("binary table at HDU {index}")),
        ));
    }
    read_table_here(&h)
}

pub(crate) fn read_table_here(h: &Handle) -> Result<Table> {
    let mut status = 0;
    let mut ncols = 0;
    let mut nrows = 0i64;
    unsafe {
        sys::ffgncl(h.ptr, &mut ncols, &mut status);
        sys::ffgnrwll(h.ptr, &mut nrows, &mut status);
    }
    h.check(status)?;
    let nrows = nrows.max(0) as usize;
    let mut columns = Vec::new();
    for k in 1..=ncols {
        let name = h
            .key_string(&format!("TTYPE{k}"))
            .unwrap_or_else(|| format!("COL{k}"));
        let mut typecode = 0;
        let (mut repeat, mut width) = (0i64, 0i64);
        unsafe {
            sys::ffgtclll(
                h.ptr,
                k,
                &mut typecode,
                &mut repeat,
                &mut width,
                &mut status,
            )
        };
        h.check(status)?;
        let mut anynul = 0;
        let col = if typecode < 0 {
            // Variable-length array: read each row's bytes.
            let mut rows = Vec::with_capacity(nrows);
            for r in 1..=nrows {
                let (mut len, mut addr): (c_long, c_long) = (0, 0);
                unsafe { sys::ffgdes(h.ptr, k, r as i64, &mut len, &mut addr, &mut status) };
                h.check(status)?;
                let mut b = vec![0u8; len.max(0) as usize];
                if !b.is_empty() {
                    unsafe {
                        sys::ffgcvb(
                            h.ptr,
                            k,
                            r as i64,
                            1,
                            b.len() as i64,
                            0,
                            b.as_mut_ptr(),
                            &mut anynul,
                            &mut status,
                        )
                    };
                    h.check(status)?;
                }
                rows.push(b);
            }
            Column::Bytes(rows)
        } else if repeat != 1 {
            return Err(h.err(ErrorKind::BadHeader(format!(
                "column {name} holds {repeat} values per row; only scalar columns are read"
            ))));
        } else if typecode == sys::TLONGLONG as c_int
            || typecode == sys::TLONG as c_int
            || typecode == sys::TINT as c_int
            || typecode == sys::TSHORT as c_int
            || typecode == sys::TBYTE as c_int
        {
            let mut v = vec![0i64; nrows];
            if nrows > 0 {
                unsafe {
                    sys::ffgcvjj(
                        h.ptr,
                        k,
                        1,
                        1,
                        nrows as i64,
                        0,
                        v.as_mut_ptr(),
                        &mut anynul,
                        &mut status,
                    )
                };
            }
            Column::I64(v)
        } else {
            let mut v = vec![0f64; nrows];
            if nrows > 0 {
                unsafe {
                    sys::ffgcvd(
                        h.ptr,
                        k,
                        1,
                        1,
                        nrows as i64,
                        f64::NAN,
                        v.as_mut_ptr(),
                        &mut anynul,
                        &mut status,
                    )
                };
            }
            Column::F64(v)
        };
        h.check(status)?;
        columns.push((name, col));
    }
    let header = Header::read(h)?;
    Ok(Table { columns, header })
}
