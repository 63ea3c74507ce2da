package isolation

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// locateDecodeError finds where a configuration that failed strict
// decoding goes wrong, so the error names the field path and what is
// allowed there ("pools[0].profile.cpuu: unknown field; allowed: cpu,
// memory, …") instead of the decoder's bare message. It returns nil when
// it cannot tell, and the caller keeps the decoder's error.
func locateDecodeError(data []byte) error {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil
	}
	return walkConfig(reflect.TypeFor[Config](), doc, "")
}

func walkConfig(t reflect.Type, v any, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil
	}
	// Types that decode themselves (Duration, policies) are leaves.
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return decodeLeaf(t, v, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want a mapping with fields %s, got %s", orRoot(path), strings.Join(jsonFields(t), ", "), describe(v))
		}
		fields := map[string]reflect.StructField{}
		collectFields(t, fields)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			f, ok := fields[k]
			if !ok {
				return fmt.Errorf("%s: unknown field; allowed: %s", join(path, k), strings.Join(jsonFields(t), ", "))
			}
			if err := walkConfig(f.Type, m[k], join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want a list, got %s", orRoot(path), describe(v))
		}
		for i, e := range l {
			if err := walkConfig(t.Elem(), e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want a mapping, got %s", orRoot(path), describe(v))
		}
		// In key order, so the error named is the same every time.
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := walkConfig(t.Elem(), m[k], join(path, k)); err != nil {
				return err
			}
		}
		return nil
	}
	return decodeLeaf(t, v, path)
}

// decodeLeaf decodes one value into its field's type and names the path
// when it does not fit.
func decodeLeaf(t reflect.Type, v any, path string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	if err := json.Unmarshal(b, reflect.New(t).Interface()); err != nil {
		msg := err.Error()
		var ute *json.UnmarshalTypeError
		if ok := asTypeError(err, &ute); ok {
			msg = fmt.Sprintf("want %s", kindName(t))
		}
		return fmt.Errorf("%s: %s: %s", orRoot(path), truncateValue(string(b)), msg)
	}
	return nil
}

func asTypeError(err error, out **json.UnmarshalTypeError) bool {
	e, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*out = e
	}
	return ok
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// collectFields maps JSON names to fields, following embedded structs as
// encoding/json does.
func collectFields(t reflect.Type, out map[string]reflect.StructField) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, out)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
}

func jsonFields(t reflect.Type) []string {
	m := map[string]reflect.StructField{}
	collectFields(t, m)
	return slices.Sorted(maps.Keys(m))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// truncateValue keeps echoed input short and on one line.
func truncateValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return s
}
