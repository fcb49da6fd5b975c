package mmsession

import "C"

import (
	"fmt"
	"reflect"
	"time"
	"unsafe"
)

// A fieldMap binds the fields of a Go struct tagged `mm:"c_name"` to the fields of a C struct
// of the same names, so that a new scalar field of mm_session.h is one tagged line here. The
// C names are looked up when the package starts: a tag that names no C field is a bug of this
// package, and panics there (the tests catch it).
//
// Going to C, a field that is its type's zero value, or a nil pointer, is left alone: the C
// struct keeps the library's default from its *_default() function. Fields whose zero value is
// a meaningful setting different from the default (a temperature of 0, a seed of 0) are
// pointers for that reason. Integers are range-checked against the C type.
type fieldMap []fieldLink

// fieldLink is one Go field and the C field it binds.
type fieldLink struct {
	goIndex int
	goName  string
	cName   string
	cOffset uintptr
	cType   reflect.Type
}

var durationType = reflect.TypeOf(time.Duration(0))

// newFieldMap binds the tagged fields of goType to the fields of cType.
func newFieldMap(goType, cType reflect.Type) fieldMap {
	var m fieldMap
	for i := 0; i < goType.NumField(); i++ {
		f := goType.Field(i)
		name, ok := f.Tag.Lookup("mm")
		if !ok {
			continue
		}
		cf, ok := cType.FieldByName(name)
		if !ok {
			panic(fmt.Sprintf("mmsession: %s.%s is bound to %s, which the C struct %s lacks", goType.Name(), f.Name, name, cType))
		}
		m = append(m, fieldLink{goIndex: i, goName: goType.Name() + "." + f.Name, cName: name, cOffset: cf.Offset, cType: cf.Type})
	}
	return m
}

// cField is the C field of l in the C struct at base, as a settable value.
func (l fieldLink) cField(base unsafe.Pointer) reflect.Value {
	return reflect.NewAt(l.cType, unsafe.Add(base, l.cOffset)).Elem()
}

// toC writes the set fields of the Go struct v into the C struct at base; strings are copied
// into mem.
func (m fieldMap) toC(v reflect.Value, base unsafe.Pointer, mem *cmem) error {
	for _, l := range m {
		field := v.Field(l.goIndex)
		if field.Kind() == reflect.Pointer {
			if field.IsNil() {
				continue
			}
			field = field.Elem()
		} else if field.IsZero() {
			continue
		}
		if err := l.set(l.cField(base), field, mem); err != nil {
			return err
		}
	}
	return nil
}

// set writes one Go value into its C field.
func (l fieldLink) set(dst, src reflect.Value, mem *cmem) error {
	switch dst.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, ok := signed(src)
		if !ok || dst.OverflowInt(x) {
			return l.outOfRange(src, dst)
		}
		dst.SetInt(x)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x, ok := unsigned(src)
		if !ok || dst.OverflowUint(x) {
			return l.outOfRange(src, dst)
		}
		dst.SetUint(x)
	case reflect.Float32, reflect.Float64:
		dst.SetFloat(src.Float())
	case reflect.Bool:
		dst.SetBool(src.Bool())
	case reflect.Pointer: // const char *
		p, err := mem.str(src.String(), l.goName)
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(p))
	default:
		panic(fmt.Sprintf("mmsession: %s: C field %s of type %s is not a scalar", l.goName, l.cName, l.cType))
	}
	return nil
}

func (l fieldLink) outOfRange(src, dst reflect.Value) error {
	return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("mmsession: %s = %v does not fit %s (a %s)", l.goName, src, l.cName, dst.Kind())}
}

// signed is src as an int64, if it is an integer that fits.
func signed(src reflect.Value) (int64, bool) {
	switch src.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return src.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return int64(src.Uint()), src.Uint() <= 1<<63-1
	}
	return 0, false
}

// unsigned is src as a uint64, if it is an integer that is not negative.
func unsigned(src reflect.Value) (uint64, bool) {
	switch src.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return uint64(src.Int()), src.Int() >= 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return src.Uint(), true
	}
	return 0, false
}

// fromC fills the Go struct v from the C struct at base: integers, floats, booleans, strings
// (from const char *) and durations (from a double of milliseconds, for C fields named *_ms).
func (m fieldMap) fromC(base unsafe.Pointer, v reflect.Value) {
	for _, l := range m {
		src, dst := l.cField(base), v.Field(l.goIndex)
		switch {
		case dst.Type() == durationType:
			dst.SetInt(int64(src.Float() * float64(time.Millisecond)))
		case src.Kind() == reflect.Pointer:
			dst.SetString(C.GoString((*C.char)(src.UnsafePointer())))
		case src.CanInt() && dst.CanInt():
			dst.SetInt(src.Int())
		case src.CanUint() && dst.CanInt():
			dst.SetInt(int64(src.Uint()))
		case src.CanUint() && dst.CanUint():
			dst.SetUint(src.Uint())
		case src.CanFloat():
			dst.SetFloat(src.Float())
		case src.Kind() == reflect.Bool:
			dst.SetBool(src.Bool())
		default:
			panic(fmt.Sprintf("mmsession: %s cannot hold C field %s of type %s", l.goName, l.cName, l.cType))
		}
	}
}
