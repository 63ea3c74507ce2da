package vm

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// Initramfs collects the files of a guest's root file system and writes
// them as the "newc" cpio archive the kernel unpacks into its rootfs.
// Parent directories are added implicitly. Files are read from the host
// only when the archive is written. Like bufio.Writer it keeps the first
// error of any addition, and WriteTo returns it, so a long list of
// additions need not check each one.
type Initramfs struct {
	entries map[string]entry
	err     error
}

type entry struct {
	mode   uint32 // with type bits
	source string // host file to copy
	data   []byte // or literal content
	link   string // symlink target
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
)

func unixPerm(m os.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&os.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// NewInitramfs returns an empty archive holding only "/".
func NewInitramfs() *Initramfs { return &Initramfs{entries: map[string]entry{}} }

func clean(p string) (string, error) {
	c := path.Clean("/" + p)
	if c == "/" || strings.Contains(p, "\x00") {
		return "", fmt.Errorf("vm: initramfs path %q: want a file below /", p)
	}
	return c[1:], nil
}

func (f *Initramfs) add(p string, e entry) error {
	c, err := clean(p)
	if err != nil {
		return f.fail(err)
	}
	for d := path.Dir(c); d != "."; d = path.Dir(d) {
		if old, ok := f.entries[d]; ok && old.mode&modeDir == 0 {
			return f.fail(fmt.Errorf("vm: initramfs: %s is not a directory (adding %s)", d, p))
		}
		if _, ok := f.entries[d]; !ok {
			f.entries[d] = entry{mode: modeDir | 0o755}
		}
	}
	f.entries[c] = e
	return nil
}

// Dir adds a directory.
func (f *Initramfs) Dir(p string, perm os.FileMode) error {
	return f.add(p, entry{mode: modeDir | unixPerm(perm)})
}

// File adds the host file source at p with the given permissions.
func (f *Initramfs) File(p, source string, perm os.FileMode) error {
	if _, err := os.Stat(source); err != nil {
		return f.fail(fmt.Errorf("vm: initramfs %s: %w", p, err))
	}
	return f.add(p, entry{mode: modeFile | uint32(perm.Perm()), source: source})
}

// Bytes adds a file with literal content.
func (f *Initramfs) Bytes(p string, data []byte, perm os.FileMode) error {
	return f.add(p, entry{mode: modeFile | uint32(perm.Perm()), data: data})
}

// Symlink adds a symbolic link p → target.
func (f *Initramfs) Symlink(p, target string) error {
	return f.add(p, entry{mode: modeSymlink | 0o777, link: target})
}

// Tree adds every regular file, directory and symlink below the host
// directory src at dst.
func (f *Initramfs) Tree(dst, src string) error {
	return f.fail(walk(src, func(rel string, fi os.FileInfo) error {
		p := path.Join(dst, rel)
		switch {
		case fi.IsDir():
			return f.Dir(p, fi.Mode())
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path.Join(src, rel))
			if err != nil {
				return err
			}
			return f.Symlink(p, target)
		case fi.Mode().IsRegular():
			return f.File(p, path.Join(src, rel), fi.Mode())
		}
		return nil
	}))
}

func (f *Initramfs) fail(err error) error {
	if err != nil && f.err == nil {
		f.err = err
	}
	return err
}

func walk(root string, fn func(rel string, fi os.FileInfo) error) error {
	var rec func(rel string) error
	rec = func(rel string) error {
		entries, err := os.ReadDir(path.Join(root, rel))
		if err != nil {
			return err
		}
		for _, e := range entries {
			r := path.Join(rel, e.Name())
			fi, err := e.Info()
			if err != nil {
				return err
			}
			if err := fn(r, fi); err != nil {
				return err
			}
			if fi.IsDir() {
				if err := rec(r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return rec("")
}

// Paths lists the archive's entries, parents before children.
func (f *Initramfs) Paths() []string {
	out := make([]string, 0, len(f.entries))
	for p := range f.entries {
		out = append(out, p)
	}
	sort.Strings(out) // "a" < "a/b": parents first
	return out
}

// WriteTo writes the archive, uncompressed: unpacking gzip under TCG costs
// seconds of emulated CPU per hundred megabytes, a plain cpio almost none.
func (f *Initramfs) WriteTo(w io.Writer) (int64, error) {
	if f.err != nil {
		return 0, f.err
	}
	cw := &countWriter{w: w}
	ino := uint32(1)
	for _, p := range f.Paths() {
		e := f.entries[p]
		var body io.Reader
		var size int64
		switch {
		case e.mode&modeSymlink == modeSymlink:
			body, size = strings.NewReader(e.link), int64(len(e.link))
		case e.source != "":
			src, err := os.Open(e.source)
			if err != nil {
				return cw.n, fmt.Errorf("vm: initramfs %s: %w", p, err)
			}
			fi, err := src.Stat()
			if err != nil {
				src.Close()
				return cw.n, fmt.Errorf("vm: initramfs %s: %w", p, err)
			}
			body, size = src, fi.Size()
		case e.mode&modeFile != 0:
			body, size = strings.NewReader(string(e.data)), int64(len(e.data))
		}
		if err := writeHeader(cw, ino, e.mode, size, p); err != nil {
			return cw.n, err
		}
		ino++
		if body != nil {
			if n, err := io.CopyN(cw, body, size); err != nil {
				return cw.n, fmt.Errorf("vm: initramfs %s: copied %d of %d bytes: %w", p, n, size, err)
			}
			if err := pad(cw); err != nil {
				return cw.n, err
			}
		}
		if c, ok := body.(io.Closer); ok {
			c.Close()
		}
	}
	if err := writeHeader(cw, 0, 0, 0, "TRAILER!!!"); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

func writeHeader(w *countWriter, ino, mode uint32, size int64, name string) error {
	nlink := 1
	if mode&modeDir == modeDir && mode&modeFile == 0 {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with NUL), check.
	_, err := fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\x00",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0, name)
	if err != nil {
		return err
	}
	return pad(w)
}

func pad(w *countWriter) error {
	if r := w.n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
