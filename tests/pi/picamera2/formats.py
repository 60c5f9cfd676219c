"""Format families as picamera2/formats.py names them."""

YUV_FORMATS = {"NV21", "NV12", "YUV420", "YVU420", "YVYU", "YUYV", "UYVY", "VYUY"}
RGB_FORMATS = {"BGR888", "RGB888", "XBGR8888", "XRGB8888"}
BAYER_PREFIXES = ("SBGGR", "SGBRG", "SGRBG", "SRGGB", "R8", "R10", "R12", "R16")


def is_YUV(fmt):
    return fmt in YUV_FORMATS


def is_RGB(fmt):
    return fmt in RGB_FORMATS


def is_raw(fmt):
    return fmt.startswith(BAYER_PREFIXES)
