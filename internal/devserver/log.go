package devserver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// slogLogger adapts slog to the server's logger, with its own minimum level because the
// server is chatty at info.
type slogLogger struct {
	l     *slog.Logger
	level *slog.LevelVar
}

func newLogger(l *slog.Logger, level *slog.LevelVar) log.Logger {
	return slogLogger{l: l.With("component", "temporal-server"), level: level}
}

func (s slogLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	if level < s.level.Level() || !s.l.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.Any(t.Key(), t.Value())
	}
	s.l.LogAttrs(context.Background(), level, msg, attrs...)
}

func (s slogLogger) Debug(msg string, tags ...tag.Tag)  { s.log(slog.LevelDebug, msg, tags) }
func (s slogLogger) Info(msg string, tags ...tag.Tag)   { s.log(slog.LevelInfo, msg, tags) }
func (s slogLogger) Warn(msg string, tags ...tag.Tag)   { s.log(slog.LevelWarn, msg, tags) }
func (s slogLogger) Error(msg string, tags ...tag.Tag)  { s.log(slog.LevelError, msg, tags) }
func (s slogLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }
func (s slogLogger) Panic(msg string, tags ...tag.Tag)  { s.log(slog.LevelError, msg, tags) }

// Fatal logs; when a listener could not be made (a port taken) it then panics with a
// *fatalError, since the server would go on to dereference the listener it failed to
// make. The server makes its listeners while Start builds it, so the panic reaches
// Start, which returns it as an error and tries other ports (newServer). Other fatal
// reports are only logged, as before.
func (s slogLogger) Fatal(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	if strings.Contains(msg, "listener") {
		panic(&fatalError{msg: msg, tags: tags})
	}
}

// fatalError is what the server reported through Fatal.
type fatalError struct {
	msg  string
	tags []tag.Tag
}

// err is the error Start returns for f: a *bindError when a listener could not bind
// its address.
func (f *fatalError) err() error {
	var addr, cause string
	for _, t := range f.tags {
		switch t.Key() {
		case "address":
			addr = fmt.Sprint(t.Value())
		case "error":
			cause = fmt.Sprint(t.Value())
		}
	}
	if addr != "" && strings.Contains(f.msg, "listener") {
		return &bindError{addr: addr, cause: cause}
	}
	return fmt.Errorf("temporal server: %s: %s", f.msg, cause)
}

// bindError: a service of the server could not listen on addr.
type bindError struct {
	addr, cause string
}

func (e *bindError) Error() string {
	return fmt.Sprintf("temporal server cannot listen on %s: %s", e.addr, e.cause)
}

// nopLogger silences the SDK client used for setup.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}
