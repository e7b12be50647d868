// Package archtest holds no code, only a test: TestLayers fails when a package imports
// one in its own layer or above it (docs/ARCHITECTURE.md draws the layers).
package archtest
