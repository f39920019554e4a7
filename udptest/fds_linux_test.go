package udptest

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestProcNetAddrDecodesTheKernelFormat(t *testing.T) {
	// The kernel prints each network-order address word as a native
	// integer: 127.0.0.1 reads 0100007F on little-endian hosts.
	word := func(b0, b1, b2, b3 byte) string {
		return fmt.Sprintf("%08X", binary.NativeEndian.Uint32([]byte{b0, b1, b2, b3}))
	}
	assert.Equal(t, "127.0.0.1:8053", procNetAddr(word(127, 0, 0, 1)+":1F75"))
	v6 := word(0, 0, 0, 0) + word(0, 0, 0, 0) + word(0, 0, 0, 0) + word(0, 0, 0, 1)
	assert.Equal(t, "[::1]:53", procNetAddr(v6+":0035"))
	assert.Equal(t, "garbage", procNetAddr("garbage"))
}
