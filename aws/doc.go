// Package aws holds lbkit's AWS parts; the ELBv2 target group adapter is aws/targetgroup.
package aws
