// Package qrcode draws the QR code of a TOTP enrolment URI, for the JSON API's image
// endpoints and for the enrolment page, from one encoding by rsc.io/qr.
//
// The PNG is the library's own. The SVG is drawn here because the library has no
// vector output, and an inline SVG lets the enrolment page show the code without
// JavaScript or a second request.
package qrcode

import (
	"fmt"
	"strings"

	"rsc.io/qr"
)

// quiet is the blank margin, in modules, that scanners need around a code; the
// library's PNG draws the same.
const quiet = 4

// PNG encodes text as a QR code image at 8 pixels per module.
func PNG(text string) ([]byte, error) {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("qrcode: %w", err)
	}
	code.Scale = 8
	return code.PNG(), nil
}

// SVG encodes text as a QR code drawn as one SVG path: small, crisp at any size, and
// inlineable in a page. The markup is built from module coordinates only, so no part
// of text reaches it and it is safe to inline.
func SVG(text string) (string, error) {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return "", fmt.Errorf("qrcode: %w", err)
	}
	n := code.Size + 2*quiet
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img" aria-label="QR code for your authenticator app">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y := 0; y < code.Size; y++ {
		for x := 0; x < code.Size; x++ {
			if code.Black(x, y) {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String(), nil
}
