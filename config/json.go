package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// applyFile sets c's fields from a parsed YAML document. It goes key by key
// (rather than through encoding/json) so every error names the key's path.
func applyFile(c reflect.Value, doc map[string]any) error {
	known := map[string]reflect.Value{}
	walk(c, "MODELPLANE", "", func(path, _ string, _ reflect.StructField, v reflect.Value) { known[path] = v })
	var errs []error
	var visit func(prefix string, m map[string]any)
	visit = func(prefix string, m map[string]any) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			path := k
			if prefix != "" {
				path = prefix + "." + k
			}
			val := m[k]
			fv, ok := known[path]
			if !ok {
				if sub, isMap := val.(map[string]any); isMap && hasPrefix(known, path+".") {
					visit(path, sub)
					continue
				}
				errs = append(errs, fmt.Errorf("unknown key %s", path))
				continue
			}
			if val == nil {
				continue
			}
			if err := setFromYAML(fv, val); err != nil {
				errs = append(errs, fmt.Errorf("key %s: %w", path, err))
			}
		}
	}
	visit("", doc)
	return errors.Join(errs...)
}

func hasPrefix(known map[string]reflect.Value, p string) bool {
	for k := range known {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func setFromYAML(v reflect.Value, val any) error {
	switch v.Kind() {
	case reflect.Slice:
		list, ok := val.([]any)
		if !ok {
			if s, isStr := val.(string); isStr {
				return setFromString(v, s)
			}
			return fmt.Errorf("want a list, got %v", val)
		}
		items := make([]string, len(list))
		for i, x := range list {
			items[i] = fmt.Sprint(x)
		}
		v.Set(reflect.ValueOf(items))
		return nil
	case reflect.Map:
		m, ok := val.(map[string]any)
		if !ok {
			return fmt.Errorf("want a map, got %v", val)
		}
		out := make(map[string]string, len(m))
		for k, x := range m {
			out[k] = fmt.Sprint(x)
		}
		v.Set(reflect.ValueOf(out))
		return nil
	case reflect.String:
		s, ok := val.(string)
		if !ok && v.Type() != reflect.TypeOf(Duration(0)) {
			return fmt.Errorf("want a string, got %v", val)
		}
		if ok {
			return setFromString(v, s)
		}
	}
	switch x := val.(type) {
	case map[string]any, []any:
		return fmt.Errorf("want a single value, got %v", val)
	case float64:
		if v.Type() == reflect.TypeOf(Duration(0)) {
			return fmt.Errorf("want a duration like \"30s\", got %v", x)
		}
		if v.Kind() == reflect.Int && x != float64(int64(x)) {
			return fmt.Errorf("want an integer, got %v", x)
		}
		return setFromString(v, fmt.Sprint(x))
	default:
		return setFromString(v, fmt.Sprint(x))
	}
}
