package mmsession

/*
#cgo pkg-config: mm-session
#include "mm_session.h"
*/
import "C"

import (
	"fmt"
	"image"
	"image/color"
	"unsafe"
)

// Media is one image or audio clip of a request: a file, the bytes of one, raw RGB pixels, an
// image.Image, or mono f32 samples. Whatever it holds is read when the request is made (bytes,
// pixels and samples are copied into C memory for the call), so it may be reused or changed
// afterwards.
type Media struct {
	kind          C.int32_t
	path          string
	data          []byte
	width, height int
	img           image.Image
	samples       []float32
}

// File is an image or audio file (PNG, JPEG, GIF, BMP, PNM, WebP; WAV, FLAC, MP3).
func File(path string) Media { return Media{kind: C.MM_MEDIA_FILE, path: path} }

// Bytes is the content of such a file.
func Bytes(data []byte) Media { return Media{kind: C.MM_MEDIA_ENCODED, data: data} }

// RGB is raw pixels, 3 bytes (R, G, B) each, row after row: at least width*height*3 bytes.
func RGB(width, height int, pixels []byte) Media {
	return Media{kind: C.MM_MEDIA_RGB, width: width, height: height, data: pixels}
}

// Image is img's pixels, converted to RGB when the request is made. Alpha is dropped the way
// the library drops it when it reads an image file: the colour is kept as it is without alpha
// (premultiplied colours are converted back first).
func Image(img image.Image) Media { return Media{kind: C.MM_MEDIA_RGB, img: img} }

// PCM is mono audio, 32-bit float samples at the projector's sample rate
// (Info().AudioSampleRate).
func PCM(samples []float32) Media { return Media{kind: C.MM_MEDIA_PCM_F32, samples: samples} }

// mediaItems copies a list of media into a C array of mm_media (NULL when empty).
func mediaItems(mem *cmem, media []Media) (*C.mm_media, C.size_t, error) {
	if len(media) == 0 {
		return nil, 0, nil
	}
	items := unsafe.Slice((*C.mm_media)(mem.alloc(len(media)*C.sizeof_mm_media)), len(media))
	for i, m := range media {
		items[i] = C.mm_media{}
		if err := m.fill(mem, &items[i]); err != nil {
			return nil, 0, err
		}
	}
	return &items[0], C.size_t(len(media)), nil
}

// fill writes the C item of m, with its strings and bytes in mem.
func (m Media) fill(mem *cmem, item *C.mm_media) error {
	item.kind = m.kind
	switch {
	case m.kind == C.MM_MEDIA_FILE:
		path, err := mem.str(m.path, "File path")
		item.path = path
		return err
	case m.img != nil:
		return fillImage(mem, item, m.img)
	case m.kind == C.MM_MEDIA_PCM_F32:
		item.data, item.size = mem.bytes(floatBytes(m.samples))
	default:
		item.data, item.size = mem.bytes(m.data)
	}
	if m.kind == C.MM_MEDIA_RGB {
		return setSize(item, m.width, m.height)
	}
	return nil
}

// floatBytes is the memory of samples as bytes (native byte order, as the C API takes them).
func floatBytes(samples []float32) []byte {
	if len(samples) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&samples[0])), len(samples)*4)
}

// setSize writes an image's width and height, refusing sizes a uint32 cannot hold.
func setSize(item *C.mm_media, width, height int) error {
	if width < 0 || height < 0 || uint64(width) > 1<<32-1 || uint64(height) > 1<<32-1 {
		return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("mmsession: RGB size %dx%d", width, height)}
	}
	item.width, item.height = C.uint32_t(width), C.uint32_t(height)
	return nil
}

// fillImage converts img to RGB pixels in C memory. An image larger than MM_MAX_IMAGE_PIXELS, or
// with a side longer than MM_MAX_IMAGE_SIDE, is refused before anything is allocated, as the
// library would refuse it.
func fillImage(mem *cmem, item *C.mm_media, img image.Image) error {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if uint64(w)*uint64(h) > C.MM_MAX_IMAGE_PIXELS || w > C.MM_MAX_IMAGE_SIDE || h > C.MM_MAX_IMAGE_SIDE {
		return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("mmsession: image of %dx%d pixels is larger than MM_MAX_IMAGE_PIXELS (%d) or MM_MAX_IMAGE_SIDE (%d) a side", w, h, C.MM_MAX_IMAGE_PIXELS, C.MM_MAX_IMAGE_SIDE)}
	}
	p := mem.alloc(w * h * 3)
	writeRGB(unsafe.Slice((*byte)(p), w*h*3), img)
	item.data, item.size = (*C.uint8_t)(p), C.size_t(w*h*3)
	return setSize(item, w, h)
}

// writeRGB writes img's pixels into pix, row after row, 3 bytes each. The common in-memory
// formats are read directly; others go through color.NRGBAModel.
func writeRGB(pix []byte, img image.Image) {
	b := img.Bounds()
	i := 0
	switch src := img.(type) {
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, y):]
			for x := 0; x < b.Dx(); x++ {
				i += copy(pix[i:i+3], row[4*x:4*x+3])
			}
		}
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, y):]
			for x := 0; x < b.Dx(); x++ {
				p := row[4*x : 4*x+4]
				pix[i], pix[i+1], pix[i+2] = unpremultiply(p[0], p[3]), unpremultiply(p[1], p[3]), unpremultiply(p[2], p[3])
				i += 3
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				pix[i], pix[i+1], pix[i+2] = c.R, c.G, c.B
				i += 3
			}
		}
	}
}

// unpremultiply gives the colour value c of a pixel premultiplied by alpha a, as it was before.
func unpremultiply(c, a uint8) uint8 {
	switch a {
	case 255:
		return c
	case 0:
		return 0
	}
	v := (uint32(c)*255 + uint32(a)/2) / uint32(a)
	if v > 255 {
		return 255
	}
	return uint8(v)
}
