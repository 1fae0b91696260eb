// Command temporald runs the Temporal server `modelplane dev` embeds, alone
// and in memory, for the reliability suite: in a process of its own it is
// not slowed down by the race detector the tests run under, as a real
// Temporal cluster would not be.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/modelplane/modelplane/temporalserver"
)

func main() {
	port := flag.Int("port", 7233, "frontend port; the next 7 ports are used by the other services")
	flag.Parse()
	ts, err := temporalserver.Start(temporalserver.Config{Port: *port})
	if err != nil {
		fmt.Fprintln(os.Stderr, "temporald:", err)
		os.Exit(1)
	}
	fmt.Println("temporald: ready on", ts.HostPort)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	_ = ts.Stop()
}
