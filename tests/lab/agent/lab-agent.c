/*
 * lab-agent: the nested lab's command channel, running in dom0.
 *
 * The host reaches it through QEMU's user-network port forward; one TCP
 * connection carries one request, so a request never sees another's bytes
 * and a broken connection is an unambiguous failure (no prompt scraping).
 *
 * Requests: one header line, then a body of exactly the announced size.
 *   RUN <timeout-seconds> <nbytes>\n<command>      (timeout 0: none)
 *   PUT <mode-octal> <nbytes> <path>\n<data>
 *   GET <path>\n
 * Replies are frames "<tag> <nbytes>\n<bytes>" (tag o: stdout, e: stderr,
 * d: file data) and one final line "x <code> <how>\n", where how is exit,
 * signal (code = signal number), timeout or error (an e frame says why).
 *
 * Usage: lab-agent [PORT [ADDRESS]] (default 7000 on every address).
 *
 * A RUN command runs as `/bin/sh -c` in its own session; when it times out
 * or the host hangs up, the whole process group is killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEADER_MAX 4096

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(int sock, char tag, const void *data, size_t len)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "%c %zu\n", tag, len);
	int rc = write_all(sock, head, (size_t)n);

	return rc ? rc : write_all(sock, data, len);
}

static void send_final(int sock, long code, const char *how)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "x %ld %s\n", code, how);

	write_all(sock, line, (size_t)n);
}

static void fail(int sock, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	strncat(msg, "\n", sizeof(msg) - strlen(msg) - 1);
	send_frame(sock, 'e', msg, strlen(msg));
	send_final(sock, 1, "error");
}

static int read_header(int sock, char *line, size_t cap)
{
	size_t len = 0;

	while (len + 1 < cap) {
		ssize_t n = read(sock, line + len, 1);
		if (n <= 0)
			return -EPIPE;
		if (line[len] == '\n') {
			line[len] = '\0';
			return 0;
		}
		len++;
	}
	return -E2BIG;
}

static char *read_body(int sock, size_t len)
{
	char *body = malloc(len + 1);

	if (!body)
		return NULL;
	if (read_all(sock, body, len)) {
		free(body);
		return NULL;
	}
	body[len] = '\0';
	return body;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Forward what a pipe has now; returns 0 at end of file. */
static int pump(int from, int sock, char tag)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n > 0 && send_frame(sock, tag, buf, (size_t)n))
		return -EPIPE;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	return n > 0 ? 1 : 0;
}

static void do_run(int sock, long timeout_s, char *cmd)
{
	int out[2], err[2];
	pid_t pid;
	int pidfd, status = 0;
	long deadline = timeout_s > 0 ? now_ms() + timeout_s * 1000 : 0;
	int timed_out = 0, exited = 0;

	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		fail(sock, "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		fail(sock, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		setsid();
		signal(SIGPIPE, SIG_DFL);
		dup2(devnull, 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	/* A pidfd lets one poll() wait for output, the child's exit and the
	 * host hanging up together. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	while (!exited) {
		struct pollfd fds[4] = {
			{ .fd = out[0], .events = POLLIN },
			{ .fd = err[0], .events = POLLIN },
			{ .fd = pidfd, .events = POLLIN },
			{ .fd = sock, .events = POLLIN },
		};
		int wait_ms = -1;

		if (deadline) {
			wait_ms = (int)(deadline - now_ms());
			if (wait_ms <= 0) {
				timed_out = 1;
				break;
			}
		}
		if (poll(fds, 4, wait_ms) < 0 && errno != EINTR)
			break;
		if (fds[0].revents && pump(out[0], sock, 'o') < 0)
			break;
		if (fds[1].revents && pump(err[0], sock, 'e') < 0)
			break;
		if (fds[3].revents) {
			/* The host hung up (or broke protocol): nobody wants
			 * the rest of this command. */
			kill(-pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return;
		}
		if (fds[2].revents)
			exited = 1;
	}
	if (!exited) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
	} else {
		waitpid(pid, &status, 0);
	}
	/* Output already written before the exit is still in the pipes; a
	 * background process that kept them open does not hold us up. */
	while (pump(out[0], sock, 'o') > 0)
		;
	while (pump(err[0], sock, 'e') > 0)
		;
	if (timed_out)
		send_final(sock, timeout_s, "timeout");
	else if (WIFSIGNALED(status))
		send_final(sock, WTERMSIG(status), "signal");
	else
		send_final(sock, WEXITSTATUS(status), "exit");
	close(pidfd);
	close(out[0]);
	close(err[0]);
}

static void do_put(int sock, unsigned mode, size_t len, const char *path)
{
	char tmp[HEADER_MAX + 16];
	char *data = read_body(sock, len);
	int fd;

	if (!data) {
		fail(sock, "PUT %s: short body", path);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.lab-agent", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || write_all(fd, data, len) || fchmod(fd, mode) || close(fd) ||
	    rename(tmp, path)) {
		fail(sock, "PUT %s: %s", path, strerror(errno));
		unlink(tmp);
	} else {
		send_final(sock, 0, "exit");
	}
	free(data);
}

static void do_get(int sock, const char *path)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		fail(sock, "GET %s: %s", path, strerror(errno));
		return;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (send_frame(sock, 'd', buf, (size_t)n))
			break;
	close(fd);
	send_final(sock, n < 0 ? 1 : 0, n < 0 ? "error" : "exit");
}

static void serve(int sock)
{
	char line[HEADER_MAX];
	char path[HEADER_MAX];
	long timeout_s;
	size_t len;
	unsigned mode;

	if (read_header(sock, line, sizeof(line)))
		return;
	if (sscanf(line, "RUN %ld %zu", &timeout_s, &len) == 2) {
		char *cmd = read_body(sock, len);
		if (!cmd) {
			fail(sock, "RUN: short body");
			return;
		}
		do_run(sock, timeout_s, cmd);
		free(cmd);
	} else if (sscanf(line, "PUT %o %zu %4095[^\n]", &mode, &len, path) == 3) {
		do_put(sock, mode, len, path);
	} else if (sscanf(line, "GET %4095[^\n]", path) == 1) {
		do_get(sock, path);
	} else {
		fail(sock, "unknown request: %.80s", line);
	}
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 7000;
	int one = 1;
	/* In dom0 the agent must listen where QEMU's port forward arrives
	 * (eth0); its own tests on the host bind it to loopback. */
	const char *bind_to = argc > 2 ? argv[2] : "0.0.0.0";
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons((unsigned short)port),
	};
	int lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sigaction reap = { .sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT };

	if (inet_pton(AF_INET, bind_to, &addr.sin_addr) != 1) {
		fprintf(stderr, "lab-agent: bad address %s\n", bind_to);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGCHLD, &reap, NULL);
	if (lsock < 0 || setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lsock, (struct sockaddr *)&addr, sizeof(addr)) || listen(lsock, 16)) {
		perror("lab-agent: listen");
		return 1;
	}
	fprintf(stderr, "lab-agent: listening on port %d\n", port);
	for (;;) {
		int sock = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
		pid_t pid;

		if (sock < 0)
			continue;
		setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pid = fork();
		if (pid == 0) {
			/* The handler waits for its own command's exit. */
			signal(SIGCHLD, SIG_DFL);
			close(lsock);
			serve(sock);
			shutdown(sock, SHUT_WR);
			close(sock);
			_exit(0);
		}
		close(sock);
	}
}
