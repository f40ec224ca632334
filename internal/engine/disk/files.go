package disk

import (
	"container/list"
	"os"
	"strings"
	"sync"
)

// fileCache keeps up to max segment files open, least recently used first
// out. Handles are reference counted: a file in use is never closed under its
// user, so the bound can be exceeded while more files are in use at once.
type fileCache struct {
	fs  FS
	max int

	mu struct {
		sync.Mutex
		open map[string]*handle
		lru  list.List // of *handle with refs == 0, most recent at front
	}
}

type handle struct {
	path string
	f    File
	refs int
	elem *list.Element // in lru while refs == 0
	gone bool          // forgotten: close when the last user releases it
	err  error         // a sync error seen on this handle; sticky
}

func newFileCache(fs FS, max int) *fileCache {
	c := &fileCache{fs: fs, max: max}
	c.mu.open = make(map[string]*handle)
	return c
}

// acquire returns the open handle for path, opening (and with create,
// creating) the file if needed. The caller must release it.
func (c *fileCache) acquire(path string, create bool) (*handle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.mu.open[path]; ok {
		if h.elem != nil {
			c.mu.lru.Remove(h.elem)
			h.elem = nil
		}
		h.refs++
		return h, nil
	}
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_TRUNC
	}
	f, err := c.fs.OpenFile(path, flag, filePerm)
	if err != nil {
		return nil, err
	}
	h := &handle{path: path, f: f, refs: 1}
	c.mu.open[path] = h
	c.evictLocked()
	return h, nil
}

// release gives back a handle obtained from acquire.
func (c *fileCache) release(h *handle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h.refs--
	if h.refs > 0 {
		return
	}
	if h.gone {
		h.f.Close()
		return
	}
	h.elem = c.mu.lru.PushFront(h)
	c.evictLocked()
}

func (c *fileCache) evictLocked() {
	for len(c.mu.open) > c.max {
		e := c.mu.lru.Back()
		if e == nil {
			return
		}
		h := e.Value.(*handle)
		c.mu.lru.Remove(e)
		h.elem = nil
		delete(c.mu.open, h.path)
		h.f.Close()
	}
}

// forget drops the handles of path, or of every path under it when prefix
// is set, closing each once unused (for removed files).
func (c *fileCache) forget(path string, prefix bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, h := range c.mu.open {
		if p != path && !(prefix && strings.HasPrefix(p, path)) {
			continue
		}
		delete(c.mu.open, p)
		h.gone = true
		if h.refs == 0 {
			c.mu.lru.Remove(h.elem)
			h.elem = nil
			h.f.Close()
		}
	}
}

// closeAll closes every handle; for Close, once nothing is in use.
func (c *fileCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, h := range c.mu.open {
		delete(c.mu.open, p)
		h.gone = true
		if h.elem != nil {
			c.mu.lru.Remove(h.elem)
			h.elem = nil
		}
		if h.refs == 0 {
			h.f.Close()
		}
	}
}

// count returns the number of files open.
func (c *fileCache) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.open)
}

// ref adds a reference to a handle already held.
func (c *fileCache) ref(h *handle) {
	c.mu.Lock()
	h.refs++
	c.mu.Unlock()
}
