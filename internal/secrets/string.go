// Package secrets keeps secrets out of logs and seals them for storage.
package secrets

import "log/slog"

// String is a secret value. It prints and logs as "[redacted]", so a secret that reaches
// a log line, an error or a %v by mistake does not leak. Use Reveal where the value is
// really needed (an Authorization header, a comparison).
type String string

const redacted = "[redacted]"

// Reveal returns the secret itself.
func (s String) Reveal() string { return string(s) }

// String implements fmt.Stringer with the value redacted.
func (s String) String() string { return redacted }

// GoString implements fmt.GoStringer with the value redacted.
func (s String) GoString() string { return redacted }

// LogValue implements slog.LogValuer with the value redacted.
func (s String) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText keeps the secret out of JSON and other encodings.
func (s String) MarshalText() ([]byte, error) { return []byte(redacted), nil }
