package kinesisapi

import (
	"fmt"
	"hash/fnv"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/runnel/runnel/internal/streams"
)

// This file holds the constraint checker. Each operation declares its input
// as a tree of shapes (ops.go) built from the small constructors below; the
// checker walks a decoded input against that tree and reports violations the
// way Kinesis does:
//
//	1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null
//
// Several violations are joined with "; " under "N validation errors
// detected: ", at most maxViolations of them, in the order the members are
// declared; each member's constraints are checked in the order not-null,
// enum, pattern, length, value range.

// maxViolations is how many violations one ValidationException lists.
const maxViolations = 10

type shapeKind uint8

const (
	kindString shapeKind = iota + 1
	kindInt
	kindLong
	kindBool
	kindBlob
	kindTimestamp
	kindList
	kindMap
	kindStruct
)

// shape is one member's model type and constraints. Shapes are values: the
// modifiers return changed copies, so shared shapes (streamName) stay intact.
type shape struct {
	kind     shapeKind
	required bool
	// min and max bound a string's, blob's, list's or map's length, or an
	// integer's value, when hasMin/hasMax are set.
	min, max       int64
	hasMin, hasMax bool
	pattern        string
	re             *regexp.Regexp
	enum           []string
	elem           *shape // list member or map value
	key            *shape // map key
	members        []member
	// javaClass is the Coral class name of a structure, used when a list of
	// them is echoed in a message.
	javaClass string
	// valid, when set on a list of structures, reports without reflection
	// that every element meets the element shape; when it cannot tell, the
	// elements are walked, which finds the messages.
	valid func(list reflect.Value) bool
}

// member is one structure member: its wire name, shape, and (after bind) the
// index of the Go struct field that holds it.
type member struct {
	name  string
	shape shape
	index int
}

func str() shape       { return shape{kind: kindString} }
func integer() shape   { return shape{kind: kindInt} }
func long() shape      { return shape{kind: kindLong} }
func boolean() shape   { return shape{kind: kindBool} }
func blob() shape      { return shape{kind: kindBlob} }
func timestamp() shape { return shape{kind: kindTimestamp} }

func listOf(elem shape) shape { return shape{kind: kindList, elem: &elem} }

func mapOf(key, value shape) shape { return shape{kind: kindMap, key: &key, elem: &value} }

// structure declares a structure's members in validation order.
func structure(javaClass string, members ...member) shape {
	return shape{kind: kindStruct, members: members, javaClass: javaClass}
}

func field(name string, s shape) member { return member{name: name, shape: s} }

// req marks the member as required ("Member must not be null").
func (s shape) req() shape { s.required = true; return s }

// length bounds a string's, blob's, list's or map's length; a negative
// bound is absent.
func (s shape) length(min, max int64) shape {
	s.min, s.hasMin = min, min >= 0
	s.max, s.hasMax = max, max >= 0
	return s
}

// between bounds an integer's value; use noBound for an absent bound.
func (s shape) between(min, max int64) shape {
	s.min, s.hasMin = min, min != noBound
	s.max, s.hasMax = max, max != noBound
	return s
}

const noBound = -1 << 63

// matching constrains a string to a regular expression, matched in whole as
// Java's String.matches does.
func (s shape) matching(pattern string) shape {
	s.pattern = pattern
	s.re = regexp.MustCompile(`^(?:` + pattern + `)$`)
	return s
}

// oneOf constrains a string to an enum. The order is the one Kinesis prints.
func (s shape) oneOf(values ...string) shape { s.enum = values; return s }

// sure sets a list's quick check (shape.valid).
func (s shape) sure(valid func(list reflect.Value) bool) shape { s.valid = valid; return s }

// bind resolves every structure member of s to the field of t (a struct
// type) whose json tag names it. It panics on a mismatch: a programming
// error the package tests catch.
func (s *shape) bind(t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch s.kind {
	case kindStruct:
		if t.Kind() != reflect.Struct {
			panic(fmt.Sprintf("kinesisapi: shape is a structure but Go type %s is not", t))
		}
		for i := range s.members {
			m := &s.members[i]
			m.index = -1
			for j := 0; j < t.NumField(); j++ {
				tag, _, _ := strings.Cut(t.Field(j).Tag.Get("json"), ",")
				if tag == m.name {
					m.index = j
					break
				}
			}
			if m.index < 0 {
				panic(fmt.Sprintf("kinesisapi: %s has no member %s", t, m.name))
			}
			m.shape.bind(t.Field(m.index).Type)
		}
	case kindList:
		if t.Kind() != reflect.Slice {
			panic(fmt.Sprintf("kinesisapi: shape is a list but Go type %s is not", t))
		}
		s.elem.bind(t.Elem())
	case kindMap:
		if t.Kind() != reflect.Map {
			panic(fmt.Sprintf("kinesisapi: shape is a map but Go type %s is not", t))
		}
		s.key.bind(t.Key())
		s.elem.bind(t.Elem())
	case kindString:
		if t.Kind() != reflect.String {
			panic(fmt.Sprintf("kinesisapi: shape is a string but Go type %s is not", t))
		}
	case kindInt, kindLong:
		if t.Kind() != reflect.Int32 && t.Kind() != reflect.Int64 {
			panic(fmt.Sprintf("kinesisapi: shape is an integer but Go type %s is not", t))
		}
	case kindBool:
		if t.Kind() != reflect.Bool {
			panic(fmt.Sprintf("kinesisapi: shape is a boolean but Go type %s is not", t))
		}
	case kindBlob:
		if t != bytesType {
			panic(fmt.Sprintf("kinesisapi: shape is a blob but Go type %s is not", t))
		}
	case kindTimestamp:
		if t != reflect.TypeFor[streams.Timestamp]() {
			panic(fmt.Sprintf("kinesisapi: shape is a timestamp but Go type %s is not", t))
		}
	}
}

// checker collects violations.
type checker struct {
	msgs  []string
	stack []pathElem
	arr   [8]pathElem
}

func (c *checker) full() bool { return len(c.msgs) >= maxViolations }

func (c *checker) add(value, constraint string) {
	if c.full() {
		return
	}
	c.msgs = append(c.msgs, "Value "+value+" at '"+c.path()+"' failed to satisfy constraint: "+constraint)
}

// pathElem is one step of the path to the member being checked: a member
// name, or (index > 0) a list element number. The checker keeps the path as
// a stack and renders it ("records.1.member.partitionKey") only when it
// reports a violation, so checking a valid input allocates nothing.
type pathElem struct {
	name  string
	index int
}

func (c *checker) path() string {
	var b strings.Builder
	for i, e := range c.stack {
		if i > 0 {
			b.WriteByte('.')
		}
		if e.index > 0 {
			b.WriteString(strconv.Itoa(e.index))
			b.WriteString(".member")
		} else {
			b.WriteString(lowerFirst(e.name))
		}
	}
	return b.String()
}

func (c *checker) push(e pathElem) { c.stack = append(c.stack, e) }
func (c *checker) pop()            { c.stack = c.stack[:len(c.stack)-1] }

// validate checks in (a pointer to an input struct) against s and returns the
// ValidationException, or nil.
func validate(s *shape, in any) *apiError {
	var c checker
	c.stack = c.arr[:0]
	c.structMembers(s, reflect.ValueOf(in).Elem())
	if len(c.msgs) == 0 {
		return nil
	}
	noun := "errors"
	if len(c.msgs) == 1 {
		noun = "error"
	}
	return newError(ErrValidation, strconv.Itoa(len(c.msgs))+" validation "+noun+" detected: "+strings.Join(c.msgs, "; "))
}

func (c *checker) structMembers(s *shape, v reflect.Value) {
	for i := range s.members {
		if c.full() {
			return
		}
		m := &s.members[i]
		c.push(pathElem{name: m.name})
		c.value(&m.shape, v.Field(m.index))
		c.pop()
	}
}

// deref returns the value a member holds, or ok=false when it is null.
func deref(v reflect.Value) (reflect.Value, bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v, false
		}
		return v.Elem(), true
	case reflect.Slice, reflect.Map:
		return v, !v.IsNil()
	}
	return v, true
}

func (c *checker) value(s *shape, raw reflect.Value) {
	v, present := deref(raw)
	if !present {
		if s.required {
			c.add("null", "Member must not be null")
		}
		return
	}
	for _, msg := range s.failures(v) {
		c.add(quote(s.render(v)), msg)
	}
	switch s.kind {
	case kindStruct:
		c.structMembers(s, v)
	case kindList:
		if s.valid != nil && s.valid(v) {
			return
		}
		if s.elem.kind == kindStruct {
			for i := 0; i < v.Len() && !c.full(); i++ {
				c.push(pathElem{index: i + 1})
				c.structMembers(s.elem, v.Index(i))
				c.pop()
			}
			return
		}
		if !s.elem.constrained() {
			return
		}
		for i := 0; i < v.Len(); i++ {
			if ev, ok := deref(v.Index(i)); ok && len(s.elem.failures(ev)) > 0 {
				c.add(quote(s.render(v)), "Member must satisfy constraint: ["+strings.Join(s.elem.constraints(), ", ")+"]")
				return
			}
		}
	case kindMap:
		keys := v.MapKeys()
		if s.key.constrained() {
			for _, k := range keys {
				if len(s.key.failures(k)) > 0 {
					c.add(quote(s.render(v)), "Map keys must satisfy constraint: ["+strings.Join(s.key.constraints(), ", ")+"]")
					break
				}
			}
		}
		if s.elem.constrained() {
			for _, k := range keys {
				if ev, ok := deref(v.MapIndex(k)); ok && len(s.elem.failures(ev)) > 0 {
					c.add(quote(s.render(v)), "Map value must satisfy constraint: ["+strings.Join(s.elem.constraints(), ", ")+"]")
					break
				}
			}
		}
	}
}

// constrained reports whether s has any constraint of its own.
func (s *shape) constrained() bool {
	return s.hasMin || s.hasMax || s.re != nil || len(s.enum) > 0
}

// failures returns the messages of the constraints the present value v
// violates, in Kinesis' order.
func (s *shape) failures(v reflect.Value) []string {
	var out []string
	switch s.kind {
	case kindString:
		str := v.String()
		if len(s.enum) > 0 && !contains(s.enum, str) {
			out = append(out, s.enumMessage())
		}
		if s.re != nil && !s.re.MatchString(str) {
			out = append(out, "Member must satisfy regular expression pattern: "+s.pattern)
		}
		out = s.lengthFailures(out, javaLength(str))
	case kindBlob, kindList, kindMap:
		out = s.lengthFailures(out, int64(v.Len()))
	case kindInt, kindLong:
		n := v.Int()
		if s.hasMin && n < s.min {
			out = append(out, "Member must have value greater than or equal to "+strconv.FormatInt(s.min, 10))
		}
		if s.hasMax && n > s.max {
			out = append(out, "Member must have value less than or equal to "+strconv.FormatInt(s.max, 10))
		}
	}
	return out
}

func (s *shape) lengthFailures(out []string, n int64) []string {
	if s.hasMin && n < s.min {
		out = append(out, "Member must have length greater than or equal to "+strconv.FormatInt(s.min, 10))
	}
	if s.hasMax && n > s.max {
		out = append(out, "Member must have length less than or equal to "+strconv.FormatInt(s.max, 10))
	}
	return out
}

// constraints lists every constraint of s, as Kinesis prints the constraints
// of a list's members or a map's keys and values.
func (s *shape) constraints() []string {
	var out []string
	if len(s.enum) > 0 {
		out = append(out, s.enumMessage())
	}
	if s.re != nil {
		out = append(out, "Member must satisfy regular expression pattern: "+s.pattern)
	}
	what := "length"
	if s.kind == kindInt || s.kind == kindLong {
		what = "value"
	}
	if s.hasMax {
		out = append(out, "Member must have "+what+" less than or equal to "+strconv.FormatInt(s.max, 10))
	}
	if s.hasMin {
		out = append(out, "Member must have "+what+" greater than or equal to "+strconv.FormatInt(s.min, 10))
	}
	return out
}

func (s *shape) enumMessage() string {
	return "Member must satisfy enum value set: [" + strings.Join(s.enum, ", ") + "]"
}

// render prints a present value the way Kinesis echoes it in a message
// (Java's toString of the deserialized value).
func (s *shape) render(v reflect.Value) string {
	switch s.kind {
	case kindString:
		return v.String()
	case kindInt, kindLong:
		return strconv.FormatInt(v.Int(), 10)
	case kindBool:
		return strconv.FormatBool(v.Bool())
	case kindBlob:
		n := strconv.Itoa(v.Len())
		return "java.nio.HeapByteBuffer[pos=0 lim=" + n + " cap=" + n + "]"
	case kindList:
		var b strings.Builder
		b.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			ev, ok := deref(v.Index(i))
			switch {
			case !ok:
				b.WriteString("null")
			case s.elem.kind == kindStruct:
				b.WriteString(s.elem.javaObject(ev))
			default:
				b.WriteString(s.elem.render(ev))
			}
		}
		b.WriteByte(']')
		return b.String()
	case kindMap:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k.String())
			b.WriteByte('=')
			if ev, ok := deref(v.MapIndex(k)); ok {
				b.WriteString(s.elem.render(ev))
			} else {
				b.WriteString("null")
			}
		}
		b.WriteByte('}')
		return b.String()
	case kindStruct:
		return s.javaObject(v)
	}
	return fmt.Sprint(v.Interface())
}

// javaObject prints a structure as Java's default Object.toString does:
// class name, '@', hash code in hex. The hash is derived from the members so
// that the same input gives the same message.
func (s *shape) javaObject(v reflect.Value) string {
	h := fnv.New32a()
	for i := range s.members {
		m := &s.members[i]
		if mv, ok := deref(v.Field(m.index)); ok {
			fmt.Fprint(h, m.name, "=", m.shape.render(mv), ";")
		}
	}
	return "com.amazonaws.kinesis.v20131202." + s.javaClass + "@" + strconv.FormatUint(uint64(h.Sum32()), 16)
}

func quote(s string) string { return "'" + s + "'" }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// javaLength is the length of s as Java counts it: UTF-16 code units.
func javaLength(s string) int64 {
	n := int64(0)
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		n += int64(utf16.RuneLen(r))
		i += size
	}
	return n
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

// putEntriesValid is the quick check of PutRecords' Records (shape.valid):
// true when every entry certainly meets PutRecordsRequestEntry's shape, the
// usual request, whose 500 entries the reflective walk took a few
// microseconds to check, with the bounds of the data and partitionKey
// shapes. It answers false for anything it does not decide (a partition
// key of more than 256 bytes may still be 256 UTF-16 units); the walk then
// gives the verdict. TestPutEntriesValid holds it to the walk.
func putEntriesValid(list reflect.Value) bool {
	entries, ok := list.Interface().([]streams.PutRecordsRequestEntry)
	if !ok {
		return false
	}
	// A key's length in bytes bounds its length in UTF-16 units from above,
	// and one byte is at least one unit.
	minKey, maxKey := int(partitionKey.min), int(partitionKey.max)
	for i := range entries {
		e := &entries[i]
		if e.Data == nil || int64(len(e.Data)) > data.max {
			return false
		}
		if e.PartitionKey != nil && (len(*e.PartitionKey) < max(minKey, 1) || len(*e.PartitionKey) > maxKey) {
			return false
		}
		if e.ExplicitHashKey != nil && !decimalKey(*e.ExplicitHashKey) {
			return false
		}
	}
	return true
}

// decimalKey reports whether s matches the hash key pattern 0|([1-9]\d{0,38}).
func decimalKey(s string) bool {
	if s == "0" {
		return true
	}
	if len(s) == 0 || len(s) > 39 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
