package api

import (
	"fmt"
	"image"
	"image/color"
	"strings"

	"rsc.io/qr"
)

// QRSVG draws a QR code as one SVG path with a four-module quiet zone: small, crisp at
// any size, and inlineable in a page without JavaScript.
func QRSVG(code *qr.Code) string {
	const quiet = 4
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
	return b.String()
}

// qrImage draws the code at scale pixels per module with the four-module quiet zone
// scanners need, as a two-colour paletted image (a small PNG).
func qrImage(code *qr.Code, scale int) image.Image {
	const quiet = 4
	n := (code.Size + 2*quiet) * scale
	img := image.NewPaletted(image.Rect(0, 0, n, n), color.Palette{color.White, color.Black})
	for y := 0; y < code.Size; y++ {
		for x := 0; x < code.Size; x++ {
			if !code.Black(x, y) {
				continue
			}
			x0, y0 := (x+quiet)*scale, (y+quiet)*scale
			for dy := 0; dy < scale; dy++ {
				row := img.Pix[(y0+dy)*img.Stride:]
				for dx := 0; dx < scale; dx++ {
					row[x0+dx] = 1
				}
			}
		}
	}
	return img
}
