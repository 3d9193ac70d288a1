package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/chatrabridge/chatrabridge"
)

// decodeStrict reads the request body, a JSON object, into v (a pointer to a struct).
// Unlike encoding/json it refuses, as EINVALID naming the field by its JSON path
// ("chatra.publicKey", "planfix.assigneeUserIds[1]"), an unknown key (keys match their
// json tags exactly), a value of the wrong type, and a value its type's UnmarshalText
// refuses. The messages quote no values, so a misplaced secret is not echoed.
func decodeStrict(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooLarge *echo.HTTPError
		if errors.As(err, &tooLarge) {
			return err
		}
		return chatrabridge.Errorf(chatrabridge.EINVALID, "the request body cannot be read")
	}
	return decodeJSON(body, v)
}

func decodeJSON(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return chatrabridge.Errorf(chatrabridge.EINVALID, "the request body is empty: send a JSON object")
	}
	if !json.Valid(body) {
		return chatrabridge.Errorf(chatrabridge.EINVALID, "the request body is not valid JSON")
	}
	if err := checkJSON(json.RawMessage(body), reflect.TypeOf(v).Elem(), ""); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		// checkJSON accepted every value, so this is not the client's doing.
		return fmt.Errorf("decode request: %w", err)
	}
	return nil
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// checkJSON walks raw along t and returns the first problem, naming its path.
func checkJSON(raw json.RawMessage, t reflect.Type, path string) error {
	if string(raw) == "null" {
		return nil // leaves the field unset, as encoding/json does
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return invalidType(path, "a string")
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			msg := chatrabridge.ErrorMessage(err)
			if chatrabridge.ErrorCode(err) != chatrabridge.EINVALID {
				msg = "is not valid"
			}
			return chatrabridge.Invalid(path, "%s: %s", path, msg)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return invalidType(path, "an object")
		}
		fields := jsonFields(t)
		for _, key := range slices.Sorted(maps.Keys(obj)) { // the first problem, deterministically
			f, ok := fields[key]
			if !ok {
				return unknownField(join(path, key), key, fields)
			}
			if err := checkJSON(obj[key], f.Type, join(path, key)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return invalidType(path, "a list")
		}
		for i, item := range list {
			if err := checkJSON(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
		return invalidType(path, kindName(t))
	}
	return nil
}

func invalidType(path, want string) error {
	if path == "" {
		return chatrabridge.Errorf(chatrabridge.EINVALID, "the request body must be %s", want)
	}
	return chatrabridge.Invalid(path, "%s must be %s", path, want)
}

func unknownField(path, key string, fields map[string]reflect.StructField) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return chatrabridge.Invalid(path, "unknown field %s: did you mean %s?", path, name)
		}
	}
	return chatrabridge.Invalid(path, "unknown field %s", path)
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "valid"
}

// jsonFields maps the JSON keys of t's exported fields to the fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
