package mmsession

/*
#include <stdint.h>
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// cmem is the C memory of one call. Everything the library reads through a pointer (strings,
// media bytes, arrays of items) is copied here, so that C is never handed Go memory that holds
// pointers (the cgo rules) and keeps nothing of Go's; free releases it all after the call.
type cmem struct {
	blocks []unsafe.Pointer
}

// alloc gives n bytes (at least 1) of C memory, for the caller to fill. cgo's C.malloc never
// returns nil (it aborts when memory runs out).
func (m *cmem) alloc(n int) unsafe.Pointer {
	if n < 1 {
		n = 1
	}
	p := C.malloc(C.size_t(n))
	m.blocks = append(m.blocks, p)
	return p
}

// bytes copies b into C memory.
func (m *cmem) bytes(b []byte) (*C.uint8_t, C.size_t) {
	p := m.alloc(len(b))
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	return (*C.uint8_t)(p), C.size_t(len(b))
}

// str copies s into C memory as a NUL-terminated string; what names the field in the error
// given for a string that holds a NUL byte (C would see it cut short there).
func (m *cmem) str(s, what string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("mmsession: %s holds a NUL byte", what)}
	}
	b := unsafe.Slice((*byte)(m.alloc(len(s)+1)), len(s)+1)
	b[copy(b, s)] = 0
	return (*C.char)(unsafe.Pointer(&b[0])), nil
}

// strs copies a list of strings into a C array of C strings (NULL when empty).
func (m *cmem) strs(list []string, what string) (**C.char, C.size_t, error) {
	if len(list) == 0 {
		return nil, 0, nil
	}
	array := unsafe.Slice((**C.char)(m.alloc(len(list)*int(unsafe.Sizeof((*C.char)(nil))))), len(list))
	for i, s := range list {
		p, err := m.str(s, fmt.Sprintf("%s[%d]", what, i))
		if err != nil {
			return nil, 0, err
		}
		array[i] = p
	}
	return &array[0], C.size_t(len(list)), nil
}

// free releases every block.
func (m *cmem) free() {
	for _, p := range m.blocks {
		C.free(p)
	}
	m.blocks = nil
}
