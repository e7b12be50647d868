package qrcode

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/testenv"
)

const uri = "otpauth://totp/Latchkey:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Latchkey&algorithm=SHA1&digits=6&period=30"

// TestPNGScans: the PNG is a valid image with the quiet zone, and a real scanner
// reads the URI back from it.
func TestPNGScans(t *testing.T) {
	raw, err := PNG(uri)
	if err != nil {
		t.Fatalf("PNG = %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("png.Decode = %v", err)
	}
	if b := img.Bounds(); b.Dx() != b.Dy() || b.Dx()%8 != 0 {
		t.Fatalf("PNG bounds = %v, want a square of whole 8-pixel modules", b)
	}
	if r, g, b, _ := img.At(0, 0).RGBA(); r != 0xffff || g != 0xffff || b != 0xffff {
		t.Fatalf("PNG corner = %v, want white (the quiet zone)", img.At(0, 0))
	}
	zbar := testenv.Tool(t, "zbarimg", "zbar-tools")
	file := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(zbar, "--quiet", "--raw", file).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != uri {
		t.Fatalf("zbarimg = %q, want %q", got, uri)
	}
}

// TestSVG: one path on a white square with the quiet zone, and nothing of the text.
func TestSVG(t *testing.T) {
	svg, err := SVG(uri)
	if err != nil {
		t.Fatalf("SVG = %v", err)
	}
	if !strings.HasPrefix(svg, "<svg ") || !strings.HasSuffix(svg, `"/></svg>`) || strings.Count(svg, "<path") != 1 {
		t.Fatalf("SVG = %.120s…, want one path in an svg element", svg)
	}
	if strings.Contains(svg, "alice") || strings.Contains(svg, "JBSWY") {
		t.Fatal("SVG contains the encoded text")
	}
	if !strings.Contains(svg, "M4 4h1v1h-1z") {
		t.Fatal("SVG has no module at (4, 4): the finder pattern should start after the four-module quiet zone")
	}
}

// TestTooLong: text beyond QR capacity is an error, not a panic.
func TestTooLong(t *testing.T) {
	long := strings.Repeat("x", 4000)
	if _, err := PNG(long); err == nil {
		t.Error("PNG(4000 bytes) = nil error, want one")
	}
	if _, err := SVG(long); err == nil {
		t.Error("SVG(4000 bytes) = nil error, want one")
	}
}
