package main

import "time"

// mailInterval is how often setpass delivers queued mail when nothing
// wakes it sooner.
const mailInterval = 5 * time.Second
