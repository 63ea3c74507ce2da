package nriplugin

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	nrilog "github.com/containerd/nri/pkg/log"
	"github.com/sirupsen/logrus"
)

// RouteNRILogs sends the NRI stub's messages (package nri/pkg/log) and
// those of its ttrpc transport (logrus, through containerd/log) to logger,
// so the plugin writes one structured format on one stream. Call it once,
// before Run; it changes process-wide loggers.
func RouteNRILogs(logger *slog.Logger) {
	l := logger.With("component", "nri")
	nrilog.Set(nriLogger{l})
	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.DebugLevel) // slog's handler filters by level
	logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{})
	logrus.AddHook(logrusHook{l})
}

type nriLogger struct{ l *slog.Logger }

func (n nriLogger) Debugf(ctx context.Context, format string, args ...any) {
	n.l.DebugContext(ctx, fmt.Sprintf(format, args...))
}
func (n nriLogger) Infof(ctx context.Context, format string, args ...any) {
	n.l.InfoContext(ctx, fmt.Sprintf(format, args...))
}
func (n nriLogger) Warnf(ctx context.Context, format string, args ...any) {
	n.l.WarnContext(ctx, fmt.Sprintf(format, args...))
}
func (n nriLogger) Errorf(ctx context.Context, format string, args ...any) {
	n.l.ErrorContext(ctx, fmt.Sprintf(format, args...))
}

// logrusHook forwards logrus entries, fields included, to slog.
type logrusHook struct{ l *slog.Logger }

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h logrusHook) Fire(e *logrus.Entry) error {
	level := slog.LevelInfo
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	case e.Level >= logrus.DebugLevel:
		level = slog.LevelDebug
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if !h.l.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	h.l.Log(ctx, level, e.Message, attrs...)
	return nil
}
