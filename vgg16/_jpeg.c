/* A JPEG's crop, decoded alone, with libjpeg's partial decompression.
 *
 * MindSpore's RandomCropDecodeResize decodes only the rows and columns of its crop
 * (jpeg_crop_scanline, jpeg_skip_scanlines); no Python library exposes that, and training's
 * crops are drawn in Python (vgg16.randomness), so this module does it for a given box. It
 * is built against the system's libjpeg-turbo when the package is installed. libjpeg's
 * defaults are kept (ISLOW IDCT, fancy upsampling), as MindSpore's and Pillow's decoders
 * keep them, so that a crop's pixels are those of the whole image decoded, to the bit
 * (tests/test_images.py checks that on every chroma subsampling and on progressive files).
 * The GIL is released while decoding, so that the pipeline's threads decode side by side.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

struct failure {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void fail(j_common_ptr cinfo)
{
    struct failure *failure = (struct failure *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, failure->message);
    longjmp(failure->jump, 1);
}

/* Warnings (corrupt data libjpeg recovers from) are ignored, as Pillow ignores them: the
 * package's verify and prepare stages refuse what Pillow cannot decode in full. */
static void ignore(j_common_ptr cinfo, int level)
{
    (void)cinfo;
    (void)level;
}

enum outcome { DECODED, FAILED, NOT_RGB, OUTSIDE };

struct header {
    JDIMENSION width, height;
    int rgb; /* whether libjpeg makes RGB of it itself: not CMYK or YCCK */
};

struct request {
    int scale; /* eighths */
    JDIMENSION left, top, width, height;
    unsigned char *out; /* height x width x 3 */
};

/* The margin, in output pixels, decoded beyond each side of the crop, so that fancy
 * upsampling at the crop's edges sees the neighbours it sees in the whole image. */
#define MARGIN 2

static void decode_box(j_decompress_ptr cinfo, const struct request *r);

/* Reads the header of the JPEG in `data`; then, unless `request` is NULL, decodes its box.
 * One function for both, as libjpeg's error exit must jump back into the frame that set
 * it up. */
static enum outcome run(const Py_buffer *data, struct header *header,
                        const struct request *request, struct failure *failure)
{
    struct jpeg_decompress_struct cinfo;
    cinfo.err = jpeg_std_error(&failure->manager);
    failure->manager.error_exit = fail;
    failure->manager.emit_message = ignore;
    if (setjmp(failure->jump)) {
        jpeg_destroy_decompress(&cinfo);
        return FAILED;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data->buf, (unsigned long)data->len);
    jpeg_read_header(&cinfo, TRUE);
    header->width = cinfo.image_width;
    header->height = cinfo.image_height;
    header->rgb = cinfo.jpeg_color_space != JCS_CMYK && cinfo.jpeg_color_space != JCS_YCCK;
    enum outcome outcome = DECODED;
    if (request != NULL && !header->rgb) {
        outcome = NOT_RGB;
    } else if (request != NULL) {
        cinfo.out_color_space = JCS_RGB;
        cinfo.scale_num = (unsigned int)request->scale;
        cinfo.scale_denom = 8;
        jpeg_start_decompress(&cinfo);
        if (request->left + request->width > cinfo.output_width ||
            request->top + request->height > cinfo.output_height)
            outcome = OUTSIDE;
        else
            decode_box(&cinfo, request);
    }
    jpeg_destroy_decompress(&cinfo);
    return outcome;
}

/* The request's box, with MARGIN pixels beside it decoded and dropped. */
static void decode_box(j_decompress_ptr cinfo, const struct request *r)
{
    JDIMENSION first = r->left > MARGIN ? r->left - MARGIN : 0;
    JDIMENSION last = r->left + r->width + MARGIN;
    if (last > cinfo->output_width)
        last = cinfo->output_width;
    JDIMENSION x = first, width = last - first;
    if (first > 0 || last < cinfo->output_width)
        jpeg_crop_scanline(cinfo, &x, &width);
    JSAMPARRAY row = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE,
                                                 width * 3, 1);
    JDIMENSION skip = r->top > MARGIN ? r->top - MARGIN : 0;
    if (skip > 0)
        jpeg_skip_scanlines(cinfo, skip);
    while (cinfo->output_scanline < r->top)
        jpeg_read_scanlines(cinfo, row, 1);
    size_t line = (size_t)r->width * 3, offset = (size_t)(r->left - x) * 3;
    for (JDIMENSION y = 0; y < r->height; y++) {
        jpeg_read_scanlines(cinfo, row, 1);
        memcpy(r->out + y * line, row[0] + offset, line);
    }
}

static PyObject *decode_crop(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer data;
    int scale, left, top, width, height;
    if (!PyArg_ParseTuple(args, "y*iiiii:decode_crop", &data, &scale, &left, &top, &width,
                          &height))
        return NULL;
    if (scale < 1 || scale > 8 || left < 0 || top < 0 || width < 1 || height < 1) {
        PyBuffer_Release(&data);
        return PyErr_Format(PyExc_ValueError,
                            "scale must be 1..8 eighths and the crop (%d, %d, %d, %d) a "
                            "non-empty box at non-negative coordinates",
                            left, top, width, height);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)width * height * 3);
    if (out == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    struct request request = {scale, (JDIMENSION)left, (JDIMENSION)top, (JDIMENSION)width,
                              (JDIMENSION)height, (unsigned char *)PyBytes_AS_STRING(out)};
    struct header header;
    struct failure failure;
    enum outcome outcome;
    Py_BEGIN_ALLOW_THREADS
    outcome = run(&data, &header, &request, &failure);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (outcome == DECODED)
        return out;
    Py_DECREF(out);
    if (outcome == NOT_RGB)
        return PyErr_Format(PyExc_ValueError, "libjpeg makes no RGB of a CMYK or YCCK JPEG");
    if (outcome == OUTSIDE)
        return PyErr_Format(PyExc_ValueError,
                            "crop (%d, %d, %d, %d) lies outside the image at %d/8 scale",
                            left, top, width, height, scale);
    return PyErr_Format(PyExc_ValueError, "cannot decode JPEG: %s", failure.message);
}

static PyObject *jpeg_header(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*:header", &data))
        return NULL;
    struct header header;
    struct failure failure;
    enum outcome outcome = run(&data, &header, NULL, &failure);
    PyBuffer_Release(&data);
    if (outcome != DECODED)
        return PyErr_Format(PyExc_ValueError, "cannot read JPEG header: %s", failure.message);
    return Py_BuildValue("IIO", header.width, header.height, header.rgb ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"header", jpeg_header, METH_VARARGS,
     "header(data) -> (width, height, rgb)\n\n"
     "The JPEG's size, and whether libjpeg makes RGB of it (not CMYK or YCCK)."},
    {"decode_crop", decode_crop, METH_VARARGS,
     "decode_crop(data, scale, left, top, width, height) -> bytes\n\n"
     "The RGB pixels (height x width x 3, row by row) of the box at (left, top) of the "
     "JPEG in `data` decoded at scale/8 (not CMYK or YCCK: see header)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jpeg", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__jpeg(void) { return PyModule_Create(&module); }
