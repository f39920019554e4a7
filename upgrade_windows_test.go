package safeudp_test

import (
	"context"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/safeudp/safeudp"
)

func TestUpgradeRefusedOnWindows(t *testing.T) {
	c, err := safeudp.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	err = safeudp.Upgrade(context.Background(), exec.Command("cmd", "/c", "exit"), c)
	require.ErrorIs(t, err, safeudp.ErrUpgradeUnsupported)
	assert.Contains(t, err.Error(), "WSADuplicateSocket")
}
