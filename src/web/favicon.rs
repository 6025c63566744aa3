//! `/favicon.ico`: the portal's colour as a small round icon, drawn here (32×32, 32-bit)
//! so the binary carries no image file and browsers stop asking for a page that is not.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{self, HeaderValue};

use super::http::Resp;

const SIZE: u32 = 32;
/// The header colour of `style.css` (#1d6f5f), as blue, green, red.
const BRAND: [u8; 3] = [0x5f, 0x6f, 0x1d];

pub fn response() -> Resp {
    let mut response = Response::new(Full::new(icon().clone()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/x-icon"),
    );
    // The one response that may be cached: it holds nothing personal.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

fn icon() -> &'static Bytes {
    static ICON: OnceLock<Bytes> = OnceLock::new();
    ICON.get_or_init(|| Bytes::from(draw()))
}

/// An ICO file with one BMP image: a filled circle, a white bar across it (a letter's flap).
fn draw() -> Vec<u8> {
    let pixels = (SIZE * SIZE * 4) as usize;
    let mask = (SIZE * 4) as usize; // 1 bit a pixel, rows padded to 4 bytes
    let image_len = 40 + pixels + mask;
    let mut ico = Vec::with_capacity(22 + image_len);
    ico.extend_from_slice(&[0, 0, 1, 0, 1, 0]); // reserved, type icon, one image
    ico.extend_from_slice(&[SIZE as u8, SIZE as u8, 0, 0, 1, 0, 32, 0]);
    ico.extend_from_slice(&(image_len as u32).to_le_bytes());
    ico.extend_from_slice(&22u32.to_le_bytes()); // where the image starts
    // BITMAPINFOHEADER; the height counts the image and its mask.
    ico.extend_from_slice(&40u32.to_le_bytes());
    ico.extend_from_slice(&SIZE.to_le_bytes());
    ico.extend_from_slice(&(SIZE * 2).to_le_bytes());
    ico.extend_from_slice(&[1, 0, 32, 0]);
    ico.extend_from_slice(&[0; 24]);
    let centre = (SIZE as f32 - 1.0) / 2.0;
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (dx, dy) = (x as f32 - centre, y as f32 - centre);
            let inside = dx * dx + dy * dy <= (centre + 0.5).powi(2);
            // Rows are stored bottom-up: y counts from the bottom.
            let flap = (12..=19).contains(&y)
                && dx.abs() <= 9.0
                && (y as f32 - 12.0) >= dx.abs() * 0.75 - 4.0;
            let [b, g, r] = if flap { [0xff; 3] } else { BRAND };
            ico.extend_from_slice(&[b, g, r, if inside { 0xff } else { 0 }]);
        }
    }
    ico.extend(std::iter::repeat_n(0u8, mask));
    ico
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_icon_is_a_32_pixel_ico() {
        let ico = super::draw();
        assert_eq!(&ico[..4], &[0, 0, 1, 0]);
        assert_eq!(ico[6], 32);
        assert_eq!(ico.len(), 22 + 40 + 32 * 32 * 4 + 32 * 4);
    }
}
