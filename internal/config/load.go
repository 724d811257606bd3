package config

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrInvalid marks every configuration problem; the commands map it to exit
// status 2.
var ErrInvalid = errors.New("invalid configuration")

// Problem is one mistake in the settings, under its key path.
type Problem struct {
	Key     string // e.g. "mail.smtp.port"; "" for the file as a whole
	Message string
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// Error lists every problem found in one load.
type Error struct {
	Path     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	src := e.Path
	if src == "" {
		src = "built-in defaults"
	}
	fmt.Fprintf(&b, "%s: %d configuration problem(s):", src, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true for any *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Options are the outside inputs of a load, injected so tests need not touch
// the process environment.
type Options struct {
	// Getenv reads KAIZEN_* secrets and OS_* credentials; nil means
	// os.Getenv. (clouds.yaml lookup, via gophercloud, also honours OS_CLOUD
	// and OS_CLIENT_CONFIG_FILE from the process environment.)
	Getenv func(string) string
	// ReadFile reads secret files; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// Writable reports whether a directory is writable, for the default
	// store's location (DefaultStateDir); nil probes the file system.
	Writable func(dir string) bool
}

// Load reads the TOML file at path over the built-in defaults and validates
// the result. path "" means defaults only. Any problem yields an *Error that
// lists all of them.
func Load(path string, opts Options) (*Config, error) {
	var data []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &Error{Path: path, Problems: []Problem{{Message: fmt.Sprintf("cannot read settings file: %v", errors.Unwrap(err))}}}
		}
		data = b
	}
	return Parse(path, data, opts)
}

// Parse is Load for settings already in memory; path only names them in
// messages.
func Parse(path string, data []byte, opts Options) (*Config, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	cfg := Defaults()
	cfg.Path = path
	v := &validator{opts: opts}

	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		// A syntax error leaves nothing reliable to validate.
		return nil, &Error{Path: path, Problems: []Problem{{Message: syntaxMessage(err)}}}
	}
	d := decoder{md: &md, v: v}
	d.table(top, reflect.ValueOf(&cfg).Elem(), "")
	// The walker reports unknown keys as it meets them; Undecoded is a
	// backstop for anything it could not see. Keys under one already
	// reported are skipped (Undecoded lists a table before its keys).
	for _, k := range md.Undecoded() {
		if !d.covered(k) {
			d.fail(k.String(), "unknown key")
		}
	}
	v.validate(&cfg)
	if len(v.problems) > 0 {
		sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Key < v.problems[j].Key })
		return nil, &Error{Path: path, Problems: v.problems}
	}
	return &cfg, nil
}

func syntaxMessage(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("TOML syntax error at line %d, column %d: %s", pe.Position.Line, pe.Position.Col, pe.Message)
	}
	return "TOML syntax error: " + err.Error()
}

// decoder assigns TOML values to Config one key at a time, so a type mismatch
// in one key is reported with its path and does not hide the next one.
type decoder struct {
	md *toml.MetaData
	v  *validator
	// reported holds keys already reported, so Undecoded does not repeat them.
	reported map[string]bool
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func (d *decoder) table(tbl map[string]toml.Primitive, rv reflect.Value, path string) {
	fields := fieldsByTag(rv.Type())
	for key, prim := range tbl {
		idx, ok := fields[key]
		if !ok {
			d.fail(join(path, key), "unknown key")
			continue
		}
		d.value(prim, rv.Field(idx), join(path, key), rv.Type().Field(idx))
	}
}

func (d *decoder) value(prim toml.Primitive, fv reflect.Value, path string, sf reflect.StructField) {
	t := fv.Type()
	switch {
	case t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshaler):
		sub, ok := d.subtable(prim)
		if !ok {
			d.fail(path, "must be a table")
			return
		}
		d.table(sub, fv, path)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && !reflect.PointerTo(t.Elem()).Implements(textUnmarshaler):
		var items []toml.Primitive
		var raw any
		_ = d.md.PrimitiveDecode(prim, &raw)
		if _, ok := raw.([]map[string]any); !ok || d.md.PrimitiveDecode(prim, &items) != nil {
			d.fail(path, "must be an array of tables ([["+path+"]])")
			return
		}
		out := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			d.value(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i), sf)
		}
		fv.Set(out)
	case t.Kind() == reflect.Map:
		sub, ok := d.subtable(prim)
		if !ok {
			d.fail(path, "must be a table")
			return
		}
		if sf.Tag.Get("kaizen") == "replace" || fv.IsNil() {
			fv.Set(reflect.MakeMap(t))
		}
		for k, p := range sub {
			ev := reflect.New(t.Elem()).Elem()
			if existing := fv.MapIndex(reflect.ValueOf(k)); existing.IsValid() && t.Elem().Kind() != reflect.Map {
				ev.Set(existing)
			}
			before := len(d.v.problems)
			d.value(p, ev, join(path, k), reflect.StructField{})
			if len(d.v.problems) == before {
				fv.SetMapIndex(reflect.ValueOf(k), ev)
			}
		}
	default:
		// Decode into a scratch value so a mismatch leaves the default intact.
		tmp := reflect.New(t)
		if err := d.md.PrimitiveDecode(prim, tmp.Interface()); err != nil {
			d.fail(path, typeMessage(err, t))
			return
		}
		fv.Set(tmp.Elem())
	}
}

// subtable splits a TOML table into its keys. The library decodes a
// non-table into a map without complaint, so the shape is checked first.
func (d *decoder) subtable(prim toml.Primitive) (map[string]toml.Primitive, bool) {
	var raw any
	if err := d.md.PrimitiveDecode(prim, &raw); err != nil {
		return nil, false
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, false
	}
	var sub map[string]toml.Primitive
	if err := d.md.PrimitiveDecode(prim, &sub); err != nil {
		return nil, false
	}
	return sub, true
}

func (d *decoder) fail(path, msg string) {
	if d.reported == nil {
		d.reported = map[string]bool{}
	}
	d.reported[path] = true
	d.v.addf(path, "%s", msg)
}

// covered reports whether an undecoded key is, or sits under, a key already
// reported (for a type error or as unknown).
func (d *decoder) covered(k toml.Key) bool {
	for i := 1; i <= len(k); i++ {
		if d.reported[k[:i].String()] {
			return true
		}
	}
	return false
}

func typeMessage(err error, t reflect.Type) string {
	want := map[reflect.Kind]string{
		reflect.String: "a string", reflect.Bool: "true or false", reflect.Int: "a whole number",
		reflect.Int64: "a whole number", reflect.Slice: "an array", reflect.Float64: "a number",
	}[t.Kind()]
	if t.Kind() == reflect.Slice {
		want = "an array of " + strings.TrimPrefix(map[reflect.Kind]string{reflect.String: "a strings", reflect.Int: "a whole numbers"}[t.Elem().Kind()], "a ")
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		want = "a string"
	}
	var pe toml.ParseError
	if errors.As(err, &pe) && want == "" {
		return pe.Message
	}
	if want == "" {
		return "wrong type"
	}
	return "must be " + want
}

func fieldsByTag(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		m[name] = i
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	if strings.ContainsAny(key, ". \"") {
		key = fmt.Sprintf("%q", key)
	}
	return path + "." + key
}
