// Package e2e is Latchkey's end-to-end suite: it drives the product from outside,
// through cli.Run and the real server on a loopback port (or the built binary), on
// SQLite and on PostgreSQL, with real tools (oathtool, zbarimg, ssh-keygen, Chromium)
// where they are installed. Each package's own behaviour is tested beside it; what is
// here is what only the whole can show: processes, replicas, crashes, floods, browsers.
package e2e
