// Command ferretdb-local runs FerretDB v1 with its SQLite backend on a local address.
//
// The upstream cmd/ferretdb binary panics when built with `go install` because it expects a
// generated version file; embedding the public ferretdb package avoids that.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data-dir", "data", "directory for the SQLite databases")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-local: bad --log-level %q\n", *logLevel)
		os.Exit(2)
	}
	logger := slog.New(lazyHandler{inner: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})})

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-local: cannot create data dir: %v\n", err)
		os.Exit(1)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dataDir + "/",
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-local: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(os.Stderr, "ferretdb-local: listening on %s, data in %s\n", *listen, *dataDir)
	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-local: %v\n", err)
		os.Exit(1)
	}
}

// lazyHandler formats the attributes and groups a logger is given only when a record is written.
//
// slog's TextHandler formats them as soon as Logger.With is called. FerretDB calls With with the
// arguments of every SQL statement it runs (whole documents, quoted character by character) for a debug
// message that is then dropped: a tenth of its CPU in the journey benchmark (README "Benchmarks").
type lazyHandler struct {
	inner slog.Handler
	steps []func(slog.Handler) slog.Handler // WithAttrs and WithGroup calls, in order
}

func (h lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h lazyHandler) Handle(ctx context.Context, record slog.Record) error {
	inner := h.inner
	for _, step := range h.steps {
		inner = step(inner)
	}
	return inner.Handle(ctx, record)
}

func (h lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.then(func(inner slog.Handler) slog.Handler { return inner.WithAttrs(attrs) })
}

func (h lazyHandler) WithGroup(name string) slog.Handler {
	return h.then(func(inner slog.Handler) slog.Handler { return inner.WithGroup(name) })
}

func (h lazyHandler) then(step func(slog.Handler) slog.Handler) lazyHandler {
	steps := make([]func(slog.Handler) slog.Handler, len(h.steps), len(h.steps)+1)
	copy(steps, h.steps)
	return lazyHandler{inner: h.inner, steps: append(steps, step)}
}
