/*
 * The C extension of the picamera2 stand-in (tests/pi/picamera2).
 *
 * On Raspberry Pi OS, `import picamera2` imports picamera2.encoders, whose
 * jpeg_encoder imports simplejpeg: a Cython extension built against Debian's
 * numpy 1.24. This module plays that part. It is compiled inside the emulated
 * rootfs against Debian's numpy 1.24 headers, and its init does what
 * Cython-generated code does before anything else: it compares the size of
 * numpy.dtype's instances with sizeof(PyArray_Descr) from the headers it was
 * built with and raises the same ValueError when the running numpy's dtype is
 * smaller (numpy 2 is: 88 bytes against 96), then calls import_array(), which
 * refuses a numpy of another C ABI. So under a pip-installed numpy 2 the
 * stand-in fails to import exactly as the real picamera2 does.
 *
 * Its one function does real work on every frame the stand-in delivers: it
 * lays out an H x W x 3 B,G,R image as a picamera2 stream format stores it
 * (RGB888: B,G,R; BGR888: R,G,B; XRGB8888: B,G,R,255; XBGR8888: R,G,B,255).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <string.h>

static PyObject *pack(PyObject *self, PyObject *args)
{
    PyObject *obj;
    const char *format;
    if (!PyArg_ParseTuple(args, "Os", &obj, &format))
        return NULL;
    int channels, swap;
    if (strcmp(format, "RGB888") == 0) { channels = 3; swap = 0; }
    else if (strcmp(format, "BGR888") == 0) { channels = 3; swap = 1; }
    else if (strcmp(format, "XRGB8888") == 0) { channels = 4; swap = 0; }
    else if (strcmp(format, "XBGR8888") == 0) { channels = 4; swap = 1; }
    else {
        PyErr_Format(PyExc_RuntimeError, "Bad format %s in stream main", format);
        return NULL;
    }
    PyArrayObject *src = (PyArrayObject *)PyArray_FROMANY(obj, NPY_UINT8, 3, 3, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (src == NULL)
        return NULL;
    npy_intp *shape = PyArray_DIMS(src);
    if (shape[2] != 3) {
        Py_DECREF(src);
        PyErr_SetString(PyExc_ValueError, "expected an H x W x 3 B,G,R image");
        return NULL;
    }
    npy_intp out_shape[3] = {shape[0], shape[1], channels};
    PyArrayObject *dst = (PyArrayObject *)PyArray_SimpleNew(3, out_shape, NPY_UINT8);
    if (dst == NULL) {
        Py_DECREF(src);
        return NULL;
    }
    const unsigned char *in = (const unsigned char *)PyArray_DATA(src);
    unsigned char *out = (unsigned char *)PyArray_DATA(dst);
    npy_intp pixels = shape[0] * shape[1];
    Py_BEGIN_ALLOW_THREADS
    for (npy_intp i = 0; i < pixels; i++, in += 3, out += channels) {
        out[0] = swap ? in[2] : in[0];
        out[1] = in[1];
        out[2] = swap ? in[0] : in[2];
        if (channels == 4)
            out[3] = 255;
    }
    Py_END_ALLOW_THREADS
    Py_DECREF(src);
    return (PyObject *)dst;
}

static PyMethodDef methods[] = {
    {"pack", pack, METH_VARARGS, "pack(bgr_image, format) -> the image as the stream format lays it out"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pixels", NULL, -1, methods};

/* What Cython's __Pyx_ImportType does for `cimport numpy`'s dtype. */
static int check_dtype_size(void)
{
    PyObject *numpy = PyImport_ImportModule("numpy");
    if (numpy == NULL)
        return -1;
    PyObject *dtype = PyObject_GetAttrString(numpy, "dtype");
    Py_DECREF(numpy);
    if (dtype == NULL)
        return -1;
    Py_ssize_t basicsize = ((PyTypeObject *)dtype)->tp_basicsize;
    Py_DECREF(dtype);
    if ((size_t)basicsize < sizeof(PyArray_Descr)) {
        PyErr_Format(PyExc_ValueError,
                     "numpy.dtype size changed, may indicate binary incompatibility. "
                     "Expected %zd from C header, got %zd from PyObject",
                     (Py_ssize_t)sizeof(PyArray_Descr), basicsize);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__pixels(void)
{
    if (check_dtype_size() < 0)
        return NULL;
    import_array();
    return PyModule_Create(&module);
}
