// Starts dynalite in memory on 127.0.0.1 at a port the system chooses and
// prints that port as the first line of standard output. It runs until its
// standard input closes, so it never outlives the test that started it.
const dynalite = require('dynalite')

const server = dynalite({ createTableMs: 50, deleteTableMs: 50, updateTableMs: 50 })
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(server.address().port + '\n')
})
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
