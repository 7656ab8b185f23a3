//! QR codes as inline SVG (the TOTP enrolment page), rendered by the `qrcode` crate.
//!
//! The SVG is made of numbers and fixed markup only (a `<rect>` and one `<path>`), so the page
//! may include it unescaped; it needs no script and no `style` attribute, which the pages'
//! CSP forbids. It holds the enrolment secret: the page carrying it is `no-store`.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The inline `<svg>` element of a QR code of `text` (error correction M, ISO/IEC 18004
/// §7.5.1: about 15 % of the modules may be damaged), at least 200 px wide, with the standard
/// quiet zone. `None` if the text does not fit a QR code (more than about 2.3 KB).
pub(crate) fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .quiet_zone(true)
        .build();
    // The XML declaration is for a standalone file; inside HTML it is not allowed.
    let start = image.find("<svg")?;
    let element = &image[start..];
    // A title for screen readers, right after the opening tag.
    let open_end = element.find('>')?;
    Some(format!(
        "{}<title>QR code of the key</title>{}",
        &element[..=open_end],
        &element[open_end + 1..]
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_otpauth_uri_renders_as_an_inline_svg() {
        let uri = "otpauth://totp/tessera:ada?secret=JBSWY3DPEHPK3PXP&issuer=tessera&algorithm=SHA1&digits=6&period=30";
        let svg = super::svg(uri).expect("fits");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
        assert!(svg.contains("<path fill=\"#000\" d=\"M"));
        // Nothing of the input is copied into the markup (it is all modules).
        assert!(!svg.contains("JBSWY3DP"));
        assert!(!svg.contains("script") && !svg.contains("style="));
        // Too long for any QR code.
        assert!(super::svg(&"x".repeat(4000)).is_none());
    }
}
