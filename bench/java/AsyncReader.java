import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.zookeeper.AsyncCallback;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

/**
 * Reads every znode under ROOT with the official client: one asynchronous request per
 * node (getData, then getChildren where numChildren > 0), the walk continued from the
 * callbacks (every request the walk can send is in flight: the client queues them).
 *
 * <p>Usage: {@code java AsyncReader HOSTS ROOT}; prints nodes, bytes, seconds.
 */
public final class AsyncReader {
    private final ZooKeeper zk;
    private final AtomicLong pending = new AtomicLong();
    private final AtomicLong nodes = new AtomicLong();
    private final AtomicLong bytes = new AtomicLong();
    private final CountDownLatch done = new CountDownLatch(1);

    private final AsyncCallback.DataCallback onData;
    private final AsyncCallback.ChildrenCallback onChildren;

    private AsyncReader(ZooKeeper zk) {
        this.zk = zk;
        this.onChildren = (rc, path, ctx, children) -> {
            if (rc == KeeperException.Code.OK.intValue()) {
                String prefix = path.equals("/") ? "/" : path + "/";
                for (String child : children) {
                    fetch(prefix + child);
                }
            }
            finished();
        };
        this.onData = (rc, path, ctx, data, stat) -> {
            if (rc == KeeperException.Code.OK.intValue()) {
                nodes.incrementAndGet();
                bytes.addAndGet(data == null ? 0 : data.length);
                if (stat.getNumChildren() > 0) {
                    started();
                    zk.getChildren(path, false, this.onChildren, null);
                }
            }
            finished();
        };
    }

    private void started() {
        pending.incrementAndGet();
    }

    private void finished() {
        if (pending.decrementAndGet() == 0) {
            done.countDown();
        }
    }

    private void fetch(String path) {
        started();
        zk.getData(path, false, onData, null);
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String root = args[1];
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(hosts, 30000, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        connected.await();
        AsyncReader reader = new AsyncReader(zk);
        long start = System.nanoTime();
        reader.fetch(root);
        reader.done.await();
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf(
                "nodes=%d bytes=%d seconds=%.3f%n", reader.nodes.get(), reader.bytes.get(), seconds);
        zk.close();
    }
}
