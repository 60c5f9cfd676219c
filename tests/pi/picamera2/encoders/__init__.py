"""picamera2.encoders: on the Pi its jpeg_encoder imports simplejpeg, a C
extension built against Debian's numpy 1.24; _pixels is that extension here
(see _pixels.c), so importing picamera2 needs the same numpy C ABI."""

from ._pixels import pack  # noqa: F401
