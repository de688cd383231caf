// A long-lived javac: compiles one sample's source per request with a warm compiler (no JVM start per sample).
// Protocol on stdin/stdout, one request per line: "<source file>\t<output folder>".
// Reply: "ok" or "error <diagnostics with newlines escaped as \n>". Annotation processing is off, so compiling
// never runs code from the source; the server itself runs inside the sandbox.
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

public class QsJavacServer {
    public static void main(String[] args) throws Exception {
        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        StandardJavaFileManager files = compiler.getStandardFileManager(null, null, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split("\t");
            DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
            List<String> options = Arrays.asList("-proc:none", "-nowarn", "-encoding", "UTF-8", "-d", parts[1]);
            boolean ok;
            try {
                ok = compiler.getTask(null, files, diagnostics, options, null,
                        files.getJavaFileObjects(new File(parts[0]))).call();
            } catch (RuntimeException e) {
                ok = false;
            }
            if (ok) {
                out.println("ok");
            } else {
                StringBuilder msg = new StringBuilder();
                for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
                    if (d.getKind() == Diagnostic.Kind.ERROR) {
                        msg.append("line ").append(d.getLineNumber()).append(": ").append(d.getMessage(null)).append('\n');
                    }
                }
                out.println("error " + msg.toString().replace("\\", "\\\\").replace("\n", "\\n"));
            }
        }
    }
}
