package sagemaker_test

import (
	"os"
	"testing"

	"github.com/modelplane/modelplane/providers/providertest"
	"github.com/modelplane/modelplane/providers/sagemaker/sagemakertest"
)

func TestMain(m *testing.M) {
	// Keep the host's AWS configuration out of the tests.
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_PROFILE":                 "",
		"AWS_ACCESS_KEY_ID":           "",
		"AWS_SECRET_ACCESS_KEY":       "",
		"AWS_SESSION_TOKEN":           "",
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		os.Setenv(k, v)
	}
	os.Exit(m.Run())
}

func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Env {
		p, _ := sagemakertest.Provider(t)
		return providertest.Env{Provider: p, Target: sagemakertest.Target("contract"), Model: "fraud"}
	})
}
