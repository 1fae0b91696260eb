package kubetest

import (
	"net"
	"os/exec"
	"path/filepath"

	"github.com/modelplane/modelplane/internal/proc"
)

// launch starts bin with its log in dir (see proc.Start).
func launch(dir, name, bin string, args ...string) (*proc.Proc, error) {
	return proc.Start(name, exec.Command(bin, args...), filepath.Join(dir, name+".log"))
}

// freePorts reserves n distinct loopback ports. They are released before the
// servers bind them; a clash with another process is possible but rare.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
