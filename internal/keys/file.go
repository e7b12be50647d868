package keys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreate returns the master secret key. A non-empty override (the value
// of LATCHKEY_SECRET_KEY, in the file's base64) wins and the file is not
// touched. Otherwise the key is read from path, or, if path does not exist,
// 32 bytes are read from rand and written there with mode 0600 and created is
// true. A key file that group or others may read is refused rather than
// used, since anyone who can read it can decrypt every TOTP secret.
func LoadOrCreate(path string, override string, rand io.Reader) (master []byte, created bool, err error) {
	if override != "" {
		master, err := decode(override)
		if err != nil {
			return nil, false, fmt.Errorf("secret key override: %w", err)
		}
		return master, false, nil
	}
	master, err = load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return master, false, err
	}
	master, err = create(path, rand)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first; use theirs.
		master, err = load(path)
		return master, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return master, true, nil
}

// load reads and checks an existing key file. Errors never quote the file's
// content, which is the key.
func load(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open secret key file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat secret key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s has mode %04o: group and others must have no access (chmod 600 %s)", path, perm, path)
	}
	// A key file is 45 bytes; reading a little more than that is enough to
	// tell a wrong file without loading something huge.
	data, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("read secret key file: %w", err)
	}
	master, err := decode(string(data))
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	return master, nil
}

// decode parses one line of standard base64 holding exactly Size bytes.
func decode(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	master, err := encoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("not valid standard base64")
	}
	if len(master) != Size {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", len(master), Size)
	}
	return master, nil
}

// create writes a new key with O_EXCL, so an existing key is never
// overwritten, and fsyncs file and directory, so a key that has sealed data
// is not lost to a power cut.
func create(path string, rand io.Reader) ([]byte, error) {
	master := make([]byte, Size)
	if _, err := io.ReadFull(rand, master); err != nil {
		return nil, fmt.Errorf("generate secret key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create secret key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create secret key file: %w", err)
	}
	_, err = f.WriteString(encoding.EncodeToString(master) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A partial file would be refused on the next start; remove it so a
		// retry can succeed.
		os.Remove(path)
		return nil, fmt.Errorf("write secret key file: %w", err)
	}
	// Best effort: some file systems cannot fsync a directory, and the key
	// is already safely in the file's own blocks.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return master, nil
}
