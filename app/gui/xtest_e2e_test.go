//go:build e2e

package gui

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// xClient speaks just enough of the X11 protocol to click with the XTEST extension, so the
// end-to-end test can press a button of the real window without xdotool.
type xClient struct {
	conn  net.Conn
	xtest byte // the extension's major opcode
	seq   uint16
}

// dialX connects to a local display such as ":3" (no authorization: Xvfb runs without it).
func dialX(display string) (*xClient, error) {
	num := strings.TrimPrefix(display, ":")
	if i := strings.IndexByte(num, '.'); i >= 0 {
		num = num[:i]
	}
	conn, err := net.DialTimeout("unix", "/tmp/.X11-unix/X"+num, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to X display %s: %w", display, err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// Connection setup: little-endian, protocol 11.0, no authorization.
	setup := []byte{'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if _, err := conn.Write(setup); err != nil {
		conn.Close()
		return nil, fmt.Errorf("X setup: %w", err)
	}
	head := make([]byte, 8)
	if _, err := io.ReadFull(conn, head); err != nil {
		conn.Close()
		return nil, fmt.Errorf("X setup reply: %w", err)
	}
	rest := make([]byte, int(binary.LittleEndian.Uint16(head[6:]))*4)
	if _, err := io.ReadFull(conn, rest); err != nil {
		conn.Close()
		return nil, fmt.Errorf("X setup reply: %w", err)
	}
	if head[0] != 1 {
		conn.Close()
		return nil, fmt.Errorf("X server refused the connection: %q", rest)
	}
	c := &xClient{conn: conn}
	if err := c.queryXTest(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *xClient) Close() error { return c.conn.Close() }

func (c *xClient) send(req []byte) error {
	c.seq++
	_, err := c.conn.Write(req)
	return err
}

// reply reads the reply to the last request, failing on an X error.
func (c *xClient) reply() ([]byte, error) {
	for {
		b := make([]byte, 32)
		if _, err := io.ReadFull(c.conn, b); err != nil {
			return nil, err
		}
		switch b[0] {
		case 0:
			return nil, fmt.Errorf("X error %d (request %d.%d)", b[1], b[10], binary.LittleEndian.Uint16(b[8:]))
		case 1:
			extra := make([]byte, int(binary.LittleEndian.Uint32(b[4:]))*4)
			if _, err := io.ReadFull(c.conn, extra); err != nil {
				return nil, err
			}
			if binary.LittleEndian.Uint16(b[2:]) == c.seq {
				return append(b, extra...), nil
			}
		}
		// An event: skip it.
	}
}

func (c *xClient) queryXTest() error {
	name := "XTEST"
	pad := (4 - len(name)%4) % 4
	req := make([]byte, 8+len(name)+pad)
	req[0] = 98 // QueryExtension
	binary.LittleEndian.PutUint16(req[2:], uint16(len(req)/4))
	binary.LittleEndian.PutUint16(req[4:], uint16(len(name)))
	copy(req[8:], name)
	if err := c.send(req); err != nil {
		return fmt.Errorf("query XTEST: %w", err)
	}
	r, err := c.reply()
	if err != nil {
		return fmt.Errorf("query XTEST: %w", err)
	}
	if r[8] == 0 {
		return errors.New("the X server has no XTEST extension")
	}
	c.xtest = r[9]
	return nil
}

// fake sends one XTestFakeInput request: type 4/5 button press/release, 6 motion.
func (c *xClient) fake(typ, detail byte, x, y int16) error {
	req := make([]byte, 36)
	req[0], req[1] = c.xtest, 2 // X_XTestFakeInput
	binary.LittleEndian.PutUint16(req[2:], 9)
	req[4], req[5] = typ, detail
	binary.LittleEndian.PutUint16(req[24:], uint16(x))
	binary.LittleEndian.PutUint16(req[26:], uint16(y))
	return c.send(req)
}

// sync waits until the server has handled every request sent (GetInputFocus round trip).
func (c *xClient) sync() error {
	if err := c.send([]byte{43, 0, 1, 0}); err != nil {
		return err
	}
	_, err := c.reply()
	return err
}

// click moves the pointer to the screen position x, y and clicks the left button.
func (c *xClient) click(x, y int) error {
	if err := c.fake(6, 0, int16(x), int16(y)); err != nil {
		return fmt.Errorf("move the pointer: %w", err)
	}
	if err := c.sync(); err != nil {
		return fmt.Errorf("move the pointer: %w", err)
	}
	time.Sleep(150 * time.Millisecond) // let the window see the pointer arrive
	for _, typ := range []byte{4, 5} {
		if err := c.fake(typ, 1, 0, 0); err != nil {
			return fmt.Errorf("click: %w", err)
		}
		if err := c.sync(); err != nil {
			return fmt.Errorf("click: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// scroll moves the pointer to x, y and turns the wheel down by notches (button 5).
func (c *xClient) scroll(x, y, notches int) error {
	if err := c.fake(6, 0, int16(x), int16(y)); err != nil {
		return fmt.Errorf("move the pointer: %w", err)
	}
	if err := c.sync(); err != nil {
		return fmt.Errorf("move the pointer: %w", err)
	}
	time.Sleep(150 * time.Millisecond)
	for range notches {
		for _, typ := range []byte{4, 5} {
			if err := c.fake(typ, 5, 0, 0); err != nil {
				return fmt.Errorf("scroll: %w", err)
			}
			if err := c.sync(); err != nil {
				return fmt.Errorf("scroll: %w", err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
