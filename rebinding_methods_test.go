package safeudp_test

import (
	"net"
	"reflect"
	"testing"

	"github.com/safeudp/safeudp"
	"github.com/stretchr/testify/assert"
)

// TestRebindingConnHasTheMethodSetOfNetUDPConnButFile lets libraries that
// detect *net.UDPConn's methods by type assertion (quic-go's
// OOBCapablePacketConn, x/net's ipv4.NewPacketConn) keep their fast paths
// on a RebindingConn. File is the one method left out: its copy would pin
// one socket. ReadBatch and WriteBatch have UDPConn's signatures.
func TestRebindingConnHasTheMethodSetOfNetUDPConnButFile(t *testing.T) {
	ours := reflect.TypeOf(&safeudp.RebindingConn{})
	check := func(theirs reflect.Type, prefix string, names ...string) {
		for i := 0; i < theirs.NumMethod(); i++ {
			m := theirs.Method(i)
			if names != nil && !contains(names, m.Name) {
				continue
			}
			if m.Name == "File" {
				_, ok := ours.MethodByName("File")
				assert.False(t, ok, "*safeudp.RebindingConn must not have File: a copy of one socket stops working at the next swap")
				continue
			}
			got, ok := ours.MethodByName(m.Name)
			if assert.True(t, ok, "*safeudp.RebindingConn lacks %s", m.Name) {
				assert.Equal(t, m.Type.String()[len(prefix):], got.Type.String()[len("func(*safeudp.RebindingConn"):], m.Name)
			}
		}
	}
	check(reflect.TypeOf(&net.UDPConn{}), "func(*net.UDPConn")
	check(reflect.TypeOf(&safeudp.UDPConn{}), "func(*safeudp.UDPConn", "ReadBatch", "WriteBatch")
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
