package listenfds

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseSystemd(t *testing.T) {
	s, err := Parse(env(map[string]string{VarPID: "42", VarFDs: "2", VarNames: "dns:quic"}), 42, 1)
	require.NoError(t, err)
	assert.Equal(t, []FD{{3, "dns"}, {4, "quic"}}, s.FDs, "descriptors from 3, named in order")
	assert.Equal(t, -1, s.Ready)
}

func TestParseWithoutNames(t *testing.T) {
	s, err := Parse(env(map[string]string{VarPID: "42", VarFDs: "1"}), 42, 1)
	require.NoError(t, err)
	assert.Equal(t, []FD{{3, "unknown"}}, s.FDs)
}

func TestParseOtherPID(t *testing.T) {
	s, err := Parse(env(map[string]string{VarPID: "43", VarFDs: "1"}), 42, 1)
	require.NoError(t, err)
	assert.Empty(t, s.FDs, "a LISTEN_PID of another process (a grandchild's inherited environment) is not for us")
}

func TestParseParent(t *testing.T) {
	m := map[string]string{VarParent: "7", VarFDs: "1", VarNames: "udp4", VarReady: "4"}
	s, err := Parse(env(m), 42, 7)
	require.NoError(t, err)
	assert.Equal(t, Set{FDs: []FD{{3, "udp4"}}, Ready: 4}, s)

	s, err = Parse(env(m), 43, 42) // a grandchild: its parent is the child
	require.NoError(t, err)
	assert.Empty(t, s.FDs)

	m[VarParent] = "1"
	s, err = Parse(env(m), 42, 1) // reparented to init
	require.NoError(t, err)
	assert.Empty(t, s.FDs)
}

func TestParseNothing(t *testing.T) {
	s, err := Parse(env(nil), 42, 1)
	require.NoError(t, err)
	assert.Empty(t, s.FDs)
	assert.Equal(t, -1, s.Ready)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		m    map[string]string
		want string
	}{
		{map[string]string{VarPID: "x", VarFDs: "1"}, "LISTEN_PID"},
		{map[string]string{VarPID: "42", VarFDs: "-1"}, "LISTEN_FDS"},
		{map[string]string{VarPID: "42", VarFDs: "two"}, "LISTEN_FDS"},
		{map[string]string{VarPID: "42", VarFDs: "2", VarNames: "a"}, "names 1 descriptors, LISTEN_FDS=2"},
		{map[string]string{VarPID: "42", VarFDs: "2", VarReady: "4"}, "SAFEUDP_READY_FD"},
	} {
		_, err := Parse(env(tc.m), 42, 1)
		require.Error(t, err, "%v", tc.m)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestEnvRoundTrip(t *testing.T) {
	vars, err := Env(7, []string{"udp4", "unixgram"}, 5)
	require.NoError(t, err)
	m := map[string]string{}
	for _, kv := range vars {
		for i := range kv {
			if kv[i] == '=' {
				m[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	s, err := Parse(env(m), 42, 7)
	require.NoError(t, err)
	assert.Equal(t, Set{FDs: []FD{{3, "udp4"}, {4, "unixgram"}}, Ready: 5}, s)

	_, err = Env(7, []string{"a:b"}, -1)
	assert.Error(t, err)
}

func TestWithout(t *testing.T) {
	got := Without([]string{"HOME=/root", "LISTEN_PID=3", "LISTEN_FDS=1", "LISTEN_FDNAMES=x", "SAFEUDP_READY_FD=4", "SAFEUDP_LISTEN_PARENT=2", "LISTEN_FDSX=1"})
	assert.Equal(t, []string{"HOME=/root", "LISTEN_FDSX=1"}, got)
}
